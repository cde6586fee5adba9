"""Write the hook reference (docs/hooks.md) from the hookspec docstrings: `python -m monitor.hookdoc`."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

from monitor import hookspecs

HEADER = """# Hook reference

Generated from `monitor/hookspecs.py` by `python -m monitor.hookdoc`; do not edit by hand.
Implement any of these in a plain module with `@monitor.plugin.hookimpl` and register the
module under the `driftd` entry-point group.
"""


def hook_functions() -> list[tuple[str, object]]:
    """Every hookspec, in the order it is defined."""
    marker = f"{hookspecs.PROJECT}_spec"
    hooks = [(name, value) for name, value in vars(hookspecs).items()
             if inspect.isfunction(value) and hasattr(value, marker)]
    return sorted(hooks, key=lambda item: item[1].__code__.co_firstlineno)


def render() -> str:
    """The Markdown reference."""
    parts = [HEADER]
    for name, function in hook_functions():
        signature = str(inspect.signature(function)).replace("'", "")
        parts.append(f"## `{name}{signature}`\n\n{inspect.cleandoc(function.__doc__ or '')}\n")
    return "\n".join(parts)


def main(path: str = "docs/hooks.md") -> None:
    """Write the reference to ``path``."""
    Path(path).write_text(render(), encoding="utf-8")


if __name__ == "__main__":
    main(*sys.argv[1:])
