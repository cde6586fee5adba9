"""Test-only crash points: end the process at one exact step, to prove what survives a crash there.

``DRIFTD_CRASH_AT=STEP#N`` (read once at start-up) ends the process with ``os._exit(86)`` the N-th
time it reaches STEP; ``DRIFTD_CRASH_TRACE=FILE`` appends every step reached to FILE (one
``STEP#N`` a line), so a test can list the steps and then crash at each. Steps are named points in
the code (``crash_point("tick.commit.after")``) and, inside a ``crash_scope("tick")``, every SQL
statement of the scope's transaction before and after it runs (``tick.sql3.before``,
``tick.sql3.after``) and its commit (``tick.commit.before``). Unset, every call returns at once.
"""

from __future__ import annotations

import contextvars
import os
from collections import Counter
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

from sqlalchemy import Engine, event

AT_VARIABLE, TRACE_VARIABLE = "DRIFTD_CRASH_AT", "DRIFTD_CRASH_TRACE"
#: The exit status of a process ended at a crash point.
EXIT_CODE = 86

_armed: str | None = None
_trace: str | None = None
_reached: Counter[str] = Counter()
_scope: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar("driftd_crash_scope", default=None)


def configure(environ: Mapping[str, str] | None = None) -> None:
    """Read the switch from the environment (done once at import; a forked test child calls it again)."""
    global _armed, _trace
    environ = os.environ if environ is None else environ
    _armed = environ.get(AT_VARIABLE) or None
    _trace = environ.get(TRACE_VARIABLE) or None
    _reached.clear()


def active() -> bool:
    """Whether crash points are switched on in this process."""
    return _armed is not None or _trace is not None


def crash_point(step: str) -> None:
    """Reaching ``step``: end the process here when the switch names it."""
    if _armed is None and _trace is None:
        return
    _reached[step] += 1
    label = f"{step}#{_reached[step]}"
    if _trace is not None:
        with open(_trace, "a", encoding="utf-8") as trace:
            trace.write(label + "\n")
    if label == _armed:
        os._exit(EXIT_CODE)


@contextmanager
def crash_scope(name: str) -> Iterator[None]:
    """Number the SQL statements run inside the block as steps of ``name``."""
    if not active():
        yield
        return
    token = _scope.set([name, 0])
    try:
        yield
    finally:
        _scope.reset(token)


def watch(engine: Engine) -> None:
    """Turn the statements and commits of a scope on ``engine`` into steps (only when switched on)."""
    if not active():
        return
    event.listen(engine, "before_cursor_execute", _before_statement)
    event.listen(engine, "after_cursor_execute", _after_statement)
    event.listen(engine, "commit", _before_commit)


def _before_statement(*_args: Any) -> None:
    scope = _scope.get()
    if scope is not None:
        scope[1] += 1
        crash_point(f"{scope[0]}.sql{scope[1]}.before")


def _after_statement(*_args: Any) -> None:
    scope = _scope.get()
    if scope is not None:
        crash_point(f"{scope[0]}.sql{scope[1]}.after")


def _before_commit(*_args: Any) -> None:
    scope = _scope.get()
    if scope is not None:
        crash_point(f"{scope[0]}.commit.before")


configure()
