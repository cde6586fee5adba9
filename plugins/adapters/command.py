"""The ``command`` adapter: runs a configured program (no shell) to retrain outside driftd.

Before it starts, the run's workdir gets ``event.json`` (the webhook's body), ``target.parquet``
and ``source.parquet`` (the features, and a ``label`` column, null where no label arrived). The
program finds them through ``DRIFTD_EVENT``, ``DRIFTD_TARGET``, ``DRIFTD_SOURCE`` and
``DRIFTD_WORKDIR``, and reads the event JSON on stdin too. It may write ``result.json`` into the
workdir: ``{"artifact": "...", "metrics": {...}}``. It runs in a process group of its own, so a
timeout or a cancellation stops it and every process it started.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, field_validator

from monitor.plugin import (
    AdaptationContext,
    AdaptationResult,
    Adapter,
    AdapterError,
    Domain,
    hookimpl,
    parse_adapter_options,
)
from plugins.adapters.webhook import encode_body, event_body

#: Bytes of stdout kept for the result and of stderr quoted in an error.
STDOUT_TAIL_BYTES = 4096
STDERR_TAIL_BYTES = 2048

#: Seconds between checks for exit, timeout and cancellation; seconds between SIGTERM and SIGKILL.
POLL_SECONDS = 0.05
KILL_GRACE_SECONDS = 2.0

#: What the program gets of driftd's environment with ``inherit_env: false``.
BASIC_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")

#: The column of the parquet files that holds the labels.
LABEL_COLUMN = "label"


class CommandOptions(BaseModel):
    """Options of the ``command`` adapter."""

    model_config = ConfigDict(extra="forbid", strict=False)

    argv: list[str] = Field(min_length=1, description="the program and its arguments (no shell)")
    timeout: float = Field(default=600.0, gt=0, description="seconds before the program is stopped")
    env: dict[str, str | int | float | bool] = Field(default_factory=dict, description="extra environment variables")
    cwd: str | None = Field(default=None, min_length=1, description="working directory (default: the run's workdir)")
    inherit_env: bool = Field(default=False, description=f"true: pass on all of driftd's environment (its secrets "
                              f"too); by default only {', '.join(BASIC_ENV)} and the configured env")

    @field_validator("argv")
    @classmethod
    def _program(cls, argv: list[str]) -> list[str]:
        if not argv[0].strip():
            raise ValueError("the program (argv[0]) must not be empty")
        return argv


@dataclass
class Finished:
    """How the program ended: exit code, wall seconds and the tails of its output."""

    code: int
    elapsed: float
    stdout: str
    stderr: str


class Tail:
    """The last ``limit`` bytes read from a pipe (read on its own thread)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()

    def drain(self, pipe: IO[bytes]) -> None:
        """Read the pipe to its end, keeping only the tail."""
        with pipe:
            for chunk in iter(lambda: pipe.read1(65536), b""):  # type: ignore[attr-defined]
                self.data += chunk
                del self.data[:-self.limit]

    def text(self) -> str:
        """The tail as text (bytes that are not UTF-8 replaced)."""
        return self.data.decode("utf-8", errors="replace").strip()


class Command(Adapter):
    """Runs a program on the event's data; exit 0 is an external remedy."""

    type_name = "command"
    needs_model = False

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.config: CommandOptions = parse_adapter_options(CommandOptions, self.options, self.type_name)
        self.name = Path(self.config.argv[0]).name

    def adapt(self, ctx: AdaptationContext) -> AdaptationResult:
        """Write the inputs, run the program, and read back ``result.json`` if it wrote one."""
        ctx.check_cancelled()
        workdir = ctx.workdir.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        event = encode_body(event_body(ctx))
        paths = {"DRIFTD_EVENT": workdir / "event.json", "DRIFTD_TARGET": workdir / "target.parquet",
                 "DRIFTD_SOURCE": workdir / "source.parquet", "DRIFTD_WORKDIR": workdir}
        paths["DRIFTD_EVENT"].write_bytes(event)
        write_domain(ctx.target, paths["DRIFTD_TARGET"])
        write_domain(ctx.source, paths["DRIFTD_SOURCE"])
        (workdir / "result.json").unlink(missing_ok=True)
        finished = self._run(ctx, event, {name: str(path) for name, path in paths.items()})
        if finished.code != 0:
            raise AdapterError(f"command {self.name}: {_ending(finished.code)}"
                               + (f"; stderr: {finished.stderr}" if finished.stderr else ""))
        details: dict[str, Any] = {"exit_code": 0, "elapsed": round(finished.elapsed, 4),
                                   "stdout_tail": finished.stdout}
        artifact, metrics = read_result(workdir / "result.json")
        if metrics is not None:
            details["metrics"] = metrics
        ctx.log.info("command %s: exit 0 in %.2fs", self.name, finished.elapsed)
        return AdaptationResult(remedy="external", assumption="none", passed=None, artifact=artifact,
                                details=details, reason=f"{self.name} finished")

    def _run(self, ctx: AdaptationContext, stdin: bytes, paths: dict[str, str]) -> Finished:
        """Run the program in its own process group until it exits, times out or is cancelled."""
        inherited = (os.environ if self.config.inherit_env
                     else {key: value for key, value in os.environ.items() if key in BASIC_ENV})
        env = {**inherited, **{key: _text(value) for key, value in self.config.env.items()}, **paths}
        cwd = os.path.expanduser(self.config.cwd) if self.config.cwd else paths["DRIFTD_WORKDIR"]
        started = time.monotonic()
        try:
            process = subprocess.Popen(self.config.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,  # noqa: S603
                                       stderr=subprocess.PIPE, cwd=cwd, env=env, start_new_session=True,
                                       preexec_fn=_die_with_parent)
        except OSError as error:
            raise AdapterError(f"command {self.name}: cannot start {self.config.argv[0]!r}: "
                               f"{error.strerror or error}") from None
        stdout, stderr = Tail(STDOUT_TAIL_BYTES), Tail(STDERR_TAIL_BYTES)
        threads = [threading.Thread(target=_feed, args=(process.stdin, stdin), daemon=True),
                   threading.Thread(target=stdout.drain, args=(process.stdout,), daemon=True),
                   threading.Thread(target=stderr.drain, args=(process.stderr,), daemon=True)]
        for thread in threads:
            thread.start()
        try:
            code = self._wait(ctx, process, started)
        except BaseException:
            stop_group(process)
            raise
        finally:
            for thread in threads:  # a leftover child may hold a pipe open: do not wait for it forever
                thread.join(timeout=1.0)
        return Finished(code, time.monotonic() - started, stdout.text(), stderr.text())

    def _wait(self, ctx: AdaptationContext, process: subprocess.Popen[bytes], started: float) -> int:
        """The exit code; AdapterError on timeout and AdaptationCancelled on cancellation."""
        while True:
            try:
                return process.wait(timeout=POLL_SECONDS)
            except subprocess.TimeoutExpired:
                pass
            ctx.check_cancelled()
            if time.monotonic() - started > self.config.timeout:
                raise AdapterError(f"command {self.name}: timed out after {self.config.timeout:g}s (stopped)")


def _load_prctl() -> Any:
    """libc's prctl on Linux (None elsewhere), looked up once so the child only calls it."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl() if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child: get SIGKILL when driftd dies (even by SIGKILL), so no run is left behind."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the program's process group, then SIGKILL whatever is left after a grace period."""
    _signal_group(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=KILL_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        pass
    _signal_group(process.pid, signal.SIGKILL)
    process.wait()


def write_domain(domain: Domain, path: Path) -> None:
    """A parquet file of the domain's features and a ``label`` column (null where unknown)."""
    if LABEL_COLUMN in domain.feature_names:
        raise AdapterError(f"command: a feature is called {LABEL_COLUMN!r}, the name of the label column")
    columns: dict[str, Any] = {name: domain.features[:, position] for position, name in enumerate(domain.feature_names)}
    try:
        if domain.labels is None:
            columns[LABEL_COLUMN] = pa.nulls(domain.rows)
        else:
            columns[LABEL_COLUMN] = pa.array(np.asarray(domain.labels), mask=~np.asarray(domain.labelled, dtype=bool))
        pq.write_table(pa.table(columns), path)
    except (pa.ArrowException, OSError) as error:
        raise AdapterError(f"command: cannot write {path.name}: {error}") from None


def read_result(path: Path) -> tuple[str | None, dict[str, Any] | None]:
    """The artifact and metrics of a ``result.json`` the program wrote (None, None without one)."""
    if not path.exists():
        return None, None
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise AdapterError(f"command: {path.name} is not valid JSON: {error}") from None
    if not isinstance(result, dict):
        raise AdapterError(f"command: {path.name} must hold a JSON object, got {type(result).__name__}")
    metrics = result.get("metrics")
    if metrics is not None and not isinstance(metrics, dict):
        raise AdapterError(f"command: 'metrics' in {path.name} must be an object, got {type(metrics).__name__}")
    artifact = result.get("artifact")
    return (None if artifact in (None, "") else str(artifact)), metrics


def _feed(pipe: IO[bytes], data: bytes) -> None:
    """Write ``data`` to the program's stdin and close it (a program that does not read it is fine)."""
    try:
        with pipe:
            pipe.write(data)
    except (BrokenPipeError, OSError):
        pass


def _signal_group(group: int, number: int) -> None:
    try:
        os.killpg(group, number)
    except (ProcessLookupError, PermissionError):
        pass


def _ending(code: int) -> str:
    """'exited with 3' or 'was killed by signal 9 (SIGKILL)'."""
    if code >= 0:
        return f"exited with {code}"
    try:
        name = f" ({signal.Signals(-code).name})"
    except ValueError:
        name = ""
    return f"was killed by signal {-code}{name}"


def _text(value: str | int | float | bool) -> str:
    """An environment value as text (YAML may give numbers and booleans)."""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


@hookimpl
def driftd_adapters() -> Mapping[str, type[Adapter]]:
    """Register the ``command`` adapter."""
    return {"command": Command}
