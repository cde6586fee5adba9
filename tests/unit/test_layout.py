"""The architecture stays as the README draws it: no import cycle, arrows one way, small modules.

Every import counts, at module level or inside a function, ``TYPE_CHECKING`` blocks included: a
deferred import is still an arrow between two parts.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 500

#: Layers, lowest first, by module-name prefix. Each may import only its own layer and the ones
#: named after it (``None`` for the standard library and third parties only).
RULES: dict[str, tuple[str, ...]] = {
    "monitor.divergence": (),
    "monitor.redact": (),
    "monitor.config": ("monitor.redact",),
    "monitor.connector": ("monitor.config", "monitor.redact"),
    "monitor.hookspecs": ("monitor.connector",),
    "monitor.notifier": ("monitor.connector",),
    "monitor.adaptation": ("monitor.connector", "monitor.config"),
    "monitor.plugin": ("monitor.adaptation", "monitor.config", "monitor.connector", "monitor.divergence",
                       "monitor.hookspecs", "monitor.notifier", "monitor.redact"),
    "monitor.testing": ("monitor.adaptation", "monitor.connector", "monitor.divergence", "monitor.notifier"),
    "monitor.domain": ("monitor.divergence", "monitor.config", "monitor.connector", "monitor.redact"),
    "monitor.performance": (),
    "monitor.compare": ("monitor.domain", "monitor.divergence", "monitor.config", "monitor.plugins"),
    "monitor.store": ("monitor.domain", "monitor.migrations", "monitor.redact"),
    "monitor.migrations": ("monitor.store.schema",),
    "monitor.metrics": ("monitor.domain.records", "monitor"),
    "monitor.plugins": ("monitor.hookspecs", "monitor.connector"),
    "monitor.logs": ("monitor.redact",),
    "monitor.daemon": ("monitor.adaptation", "monitor.config", "monitor.connector", "monitor.divergence",
                       "monitor.domain", "monitor.metrics", "monitor.notifier", "monitor.performance", "monitor.plugins",
                       "monitor.redact", "monitor.store"),
    "monitor.http": ("monitor", "monitor.config", "monitor.daemon", "monitor.domain", "monitor.metrics",
                     "monitor.redact", "monitor.store"),
    "monitor.cli": ("monitor", "monitor.adaptation", "monitor.compare", "monitor.config", "monitor.connector",
                    "monitor.daemon",
                    "monitor.divergence", "monitor.domain", "monitor.http", "monitor.logs", "monitor.plugins",
                    "monitor.redact", "monitor.store", "plugins.connectors.synthetic"),
    "monitor.hookdoc": ("monitor", "monitor.hookspecs"),
    "plugins": ("monitor.plugin", "monitor.hookspecs", "monitor.connector", "monitor.divergence",
                "monitor.adaptation", "monitor.testing"),
}


def _module_names() -> dict[str, Path]:
    """Every module of the two packages (and the migrations, installed as ``monitor.migrations``)."""
    modules: dict[str, Path] = {}
    for top in ("monitor", "plugins", "migrations"):
        for path in (ROOT / top).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[0] == "migrations":
                parts = ["monitor", *parts]
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


MODULES = _module_names()


def _imports(name: str, path: Path) -> set[str]:
    """The project modules ``name`` imports (a name imported from a package counts as its submodule when it is one)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {module for module in found if module in MODULES and module != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(module: str) -> str:
    return max((prefix for prefix in RULES if module == prefix or module.startswith(prefix + ".")), key=len)


def _allowed(source: str, target: str) -> bool:
    layer = _layer(source)
    if target == layer or target.startswith(layer + "."):
        return True
    return any(target == allowed or target.startswith(allowed + ".") if allowed != "monitor" else target == "monitor"
               for allowed in RULES[layer])


def test_every_module_belongs_to_a_layer() -> None:
    orphans = [name for name in MODULES if not any(name == p or name.startswith(p + ".") for p in RULES)]
    assert orphans == [] or orphans == ["monitor"], f"add these modules to a layer in RULES: {orphans}"


def test_no_arrow_runs_the_wrong_way() -> None:
    wrong = sorted(f"{source} -> {target}" for source, targets in GRAPH.items() if source != "monitor"
                   for target in targets if not _allowed(source, target))
    assert wrong == [], "imports that break the layering:\n  " + "\n  ".join(wrong)


def test_there_is_no_import_cycle() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in GRAPH[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in GRAPH:
        if node not in index:
            visit(node)
    assert cycles == [], f"import cycles: {cycles}"


def test_the_checks_see_a_broken_rule() -> None:
    """The checks above would fail on the arrows this restructuring removed."""
    assert not _allowed("monitor.divergence.base", "monitor.store")
    assert not _allowed("monitor.domain.evaluate", "monitor.store")
    assert not _allowed("monitor.daemon", "monitor.http.api")
    assert not _allowed("plugins.connectors.sql", "monitor.domain.pushdown")
    assert not _allowed("monitor.plugins", "monitor.daemon.engine")
    assert _allowed("monitor.http.api", "monitor.daemon")


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_over_500_lines(name: str) -> None:
    lines = MODULES[name].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{name} has {lines} lines: split it by job"


def test_the_numbers_load_no_database_web_or_configuration_library() -> None:
    code = ("import sys, monitor.divergence as d; d.MeasureRegistry(); d.MultivariateMeasure; d.ReferenceSummary; "
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'pydantic', 'starlette', "
            "'apscheduler', 'alembic', 'uvicorn', 'yaml'}); "
            "ours = sorted(m for m in sys.modules if m.startswith('monitor') and not m.startswith('monitor.divergence')"
            " and m != 'monitor'); print(heavy, ours)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[] []"


def test_the_wheel_lists_every_package_in_the_tree() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    mapped = setuptools.get("package-dir", {})

    def folder(package: str) -> Path:
        prefix = max((p for p in mapped if package == p or package.startswith(p + ".")), key=len, default=None)
        if prefix is None:
            return ROOT / package.replace(".", "/")
        return ROOT / mapped[prefix] / package[len(prefix):].lstrip(".").replace(".", "/")

    listed = {package: folder(package) for package in setuptools["packages"]}
    in_tree = {name for name, path in MODULES.items() if path.name == "__init__.py"}
    assert set(listed) == in_tree
    assert all((path / "__init__.py").is_file() for path in listed.values())


def test_the_example_plugin_and_its_tests_use_only_the_public_api() -> None:
    example = ROOT / "examples" / "driftd-example-plugin"
    public = {"monitor.plugin", "monitor.testing"}
    for path in example.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for module in names:
                if module.split(".")[0] == "monitor":
                    assert module in public, f"{path.relative_to(ROOT)} imports {module}"


def test_an_installed_wheel_migrates_a_database(tmp_path: Path) -> None:
    """``driftd db upgrade`` finds the top-level ``migrations/`` inside the wheel, as ``monitor.migrations``."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        (source / name).write_bytes((ROOT / name).read_bytes())
    for name in ("monitor", "plugins", "migrations"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--wheel-dir", str(tmp_path / "dist"), str(source)], check=True, timeout=300)
    site = tmp_path / "site"
    with zipfile.ZipFile(next((tmp_path / "dist").glob("driftd-*.whl"))) as wheel:
        wheel.extractall(site)
    assert not (site / "migrations").exists(), "the wheel installs no top-level 'migrations' package"
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import monitor; "
            "assert monitor.__file__.startswith(sys.argv[1]), monitor.__file__; "
            "from monitor.cli import main; main(['db', 'upgrade'])")
    database = tmp_path / "driftd.db"
    done = subprocess.run([sys.executable, "-c", code, str(site)], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env={**os.environ, "DRIFTD_STORAGE_URL": f"sqlite:///{database}"})
    assert done.returncode == 0, done.stderr
    assert "schema empty -> " in done.stdout and database.exists()


def test_every_name_of_the_numbers_package_resolves() -> None:
    import monitor.divergence as numbers

    assert sorted(numbers.__all__) == sorted(numbers._EXPORTS)
    assert all(getattr(numbers, name) is not None for name in numbers.__all__)


def test_todays_plugin_import_paths_name_the_public_api() -> None:
    """Plugins written against the earlier paths keep working: the same objects as ``monitor.plugin``'s."""
    import monitor.plugin as public
    from monitor.adaptation import AdaptationContext, AdaptationResult, Adapter, AdapterError
    from monitor.adaptation.contract import parse_adapter_options
    from monitor.connector import Batch, Connector, ConnectorError, Cursor, parse_options
    from monitor.divergence import Measure, MultivariateMeasure, NumericSummary, NumericWindow, Score
    from monitor.hookspecs import hookimpl
    from monitor.testing import check_adapter, check_connector

    earlier = {"AdaptationContext": AdaptationContext, "AdaptationResult": AdaptationResult, "Adapter": Adapter,
               "AdapterError": AdapterError, "parse_adapter_options": parse_adapter_options, "Batch": Batch,
               "Connector": Connector, "ConnectorError": ConnectorError, "Cursor": Cursor,
               "parse_options": parse_options, "Measure": Measure, "MultivariateMeasure": MultivariateMeasure,
               "NumericSummary": NumericSummary, "NumericWindow": NumericWindow, "Score": Score, "hookimpl": hookimpl}
    assert {name: getattr(public, name) for name in earlier} == earlier
    assert callable(check_adapter) and callable(check_connector)
