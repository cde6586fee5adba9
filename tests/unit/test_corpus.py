"""The bad-input corpus (tests/corpus/cases.yaml): one test per case, each checking its documented outcome.

Config cases run ``driftd config validate`` in process. Data and plugin cases tick a monitor
"bad" beside a healthy monitor "good" on one SQLite history: the good one must keep going, the
bad one must fail with a message naming the monitor and the cause (or handle the input as the
manifest says), and once the bad input is fixed no row is lost: rows in windows + pending rows
equal the rows the source holds.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import shutil
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from monitor.cli import main
from monitor.config import MonitorConfig, build_config
from monitor.daemon.engine import MonitorError, MonitorRunner, SourceDown
from monitor.metrics import Metrics
from monitor.store.migrate import upgrade
from monitor.plugins import PluginManager
from monitor.domain.reference import table_from_bytes
from monitor.store import Store
from plugins.connectors.files import FilesConnector

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
CASES: list[dict[str, Any]] = yaml.safe_load((CORPUS / "cases.yaml").read_text(encoding="utf-8"))
PLUGIN_NAME = "corpus_plugin"


def _params() -> list[Any]:
    params = []
    for case in CASES:
        marks = [pytest.mark.xfail(strict=True, reason=case["xfail"])] if case.get("xfail") else []
        params.append(pytest.param(case, id=case["id"], marks=marks))
    return params


def test_the_manifest_is_well_formed() -> None:
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 50
    for case in CASES:
        assert case["kind"] in {"config", "data", "plugin"}, case["id"]
        assert case.get("about") and case.get("expect") is not None, case["id"]
        inputs = [case["input"]] if isinstance(case.get("input"), str) else case.get("input", [])
        for name in [*inputs, *([case["plugin"]] if "plugin" in case else [])]:
            assert (CORPUS / name).is_file(), f"{case['id']}: {name} is not in tests/corpus"


@pytest.mark.parametrize("case", _params())
def test_corpus_case(case: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                     caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    for variable in [name for name in os.environ if name.startswith("DRIFTD_")]:
        monkeypatch.delenv(variable)
    monkeypatch.delenv("CORPUS_UNSET_PATH", raising=False)
    caplog.set_level(logging.INFO)
    if case["kind"] == "config":
        _config_case(case, tmp_path)
    else:
        _data_case(case, tmp_path, caplog)


# ---- config --------------------------------------------------------------------------------


def _config_case(case: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    shutil.copy(CORPUS / "data" / "ok.csv", tmp_path / "data" / "ok.csv")
    path = CORPUS / case["input"]
    result = CliRunner().invoke(main, ["config", "validate", str(path)])
    expect = case["expect"]
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == expect["exit"], (result.stdout, result.stderr)
    assert "Traceback" not in result.output
    if expect["exit"] != 0:
        assert str(path) in result.stderr, "the message names the file"
    for text in expect.get("stderr", []):
        assert text in result.stderr, f"{text!r} not in {result.stderr!r}"
    for text in expect.get("stdout", []):
        assert text in result.stdout, f"{text!r} not in {result.stdout!r}"


# ---- data and plugins ------------------------------------------------------------------------


def _monitor(name: str, folder: Path, case: dict[str, Any], reference: str | None = None) -> MonitorConfig:
    options = {"path": str(folder / case["source_path"]) if "source_path" in case else str(folder),
               **case.get("source_options", {})}
    raw: dict[str, Any] = {
        "name": name,
        "source": {"type": "files", "options": options},
        "features": {"numeric": ["a", "b"], "categorical": ["c"]},
        "window": {"rows": 50},
        "reference": {"path": str(CORPUS / (reference or case.get("reference", "data/ref.csv")))},
        "measures": ["ks", "psi", "chi_square"],
        "max_rows": 10_000,
    }
    raw.update(case.get("monitor", {}))
    return build_config({"monitors": [raw]}, "corpus", environ={}).monitors[0]


def _load_plugin(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"corpus_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _accounted_rows(store: Store, runner: MonitorRunner) -> tuple[int, int]:
    windows = store.windows(runner.name, limit=10_000)
    progress = store.load_progress(runner.monitor_id, recent=0)
    pending = table_from_bytes(progress.pending).num_rows if progress.pending else 0
    return sum(window.rows for window in windows), pending


def _source_rows(folder: Path) -> int:
    """The rows the files hold, each file read whole on its own (as a fresh reader sees them)."""
    return sum(FilesConnector({"path": str(path)}).fetch(None, 10**9).num_rows for path in sorted(folder.iterdir()))


def _data_case(case: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    expect = case["expect"]
    bad_dir, good_dir = tmp_path / "bad", tmp_path / "good"
    bad_dir.mkdir()
    good_dir.mkdir()
    shutil.copy(CORPUS / "data" / "ok.csv", good_dir / "ok.csv")
    copied = []
    for index, name in enumerate(case.get("input", [])):
        copied.append(bad_dir / f"part-{index:02d}-{Path(name).name}")
        shutil.copy(CORPUS / name, copied[-1])
    _lay_out(case.get("layout", []), bad_dir, copied)

    store = Store(f"sqlite:///{tmp_path / 'driftd.db'}")
    upgrade(store.engine)
    metrics = Metrics()
    good = MonitorRunner(_monitor("good", good_dir, {}), store, PluginManager(load_entry_points=False), metrics)
    plugins = PluginManager(load_entry_points=False)
    module = _load_plugin(CORPUS / case["plugin"]) if "plugin" in case else None
    if module is not None:
        plugins.register(module, PLUGIN_NAME)
    if "plugin_error" in expect:
        assert expect["plugin_error"] in (plugins.info[PLUGIN_NAME].error or "")
    config = _monitor("bad", bad_dir, case)

    if "build_error" in expect:
        with pytest.raises(MonitorError) as raised:
            MonitorRunner(config, store, plugins, metrics)
        for text in expect["build_error"]:
            assert text in str(raised.value), f"{text!r} not in {raised.value}"
        assert len(good.tick().windows) == 2, "the other monitor keeps going"
        return

    bad = MonitorRunner(config, store, plugins, metrics)
    if expect.get("hangs"):
        _hanging_case(bad, good, module)
        return

    errors: list[MonitorError] = []
    windows = []
    good_windows = 0
    for _ in range(3):
        try:
            windows += bad.tick().windows
        except MonitorError as error:
            errors.append(error)
        good_windows += len(good.tick().windows)
    assert good_windows == 2, "the other monitor keeps going"

    if "error" in expect:
        assert errors, f"no error; windows: {windows}"
        for error in errors:
            assert type(error).__name__ == expect["error_type"], repr(error)
            for text in expect["error"]:
                assert text in str(error), f"{text!r} not in {error}"
            for text in expect.get("error_not", []):
                assert text not in str(error), f"{text!r} in {error}"
    else:
        assert not errors, [str(error) for error in errors]
        assert len(windows) == expect["windows"], [w.rows for w in windows]
    _check_windows(windows, expect)
    text = "\n".join(record.getMessage() for record in caplog.records)
    for expected in expect.get("log", []):
        assert expected in text, f"{expected!r} not logged:\n{text}"
    for expected, times in expect.get("log_once", {}).items():
        assert text.count(expected) == times, f"{expected!r} logged {text.count(expected)} times, not {times}"
    if "source_files" in expect:
        assert metrics.snapshot("bad").source_files == expect["source_files"]

    if "rows" in case:
        bad = _apply_fix(case, bad, store, plugins, copied, bad_dir)
        for _ in range(10):
            if bad.tick().rows_fetched == 0:
                break
        in_windows, pending = _accounted_rows(store, bad)
        assert in_windows + pending == case["rows"], (in_windows, pending)
        rewritten = {"rewrite", "replace"} & set(case.get("fix", {}))
        flat = not case.get("layout") and "source_path" not in case
        if bad.config.source.type == "files" and flat and not rewritten:
            assert in_windows + pending == _source_rows(bad_dir), "nothing lost, nothing counted twice"
        after = "\n".join(record.getMessage() for record in caplog.records)
        for expected in case.get("fix", {}).get("log", []):
            assert expected in after, f"{expected!r} not logged after the fix:\n{after}"
    assert _accounted_rows(store, good) == (100, 0)


def _check_windows(windows: list[Any], expect: dict[str, Any]) -> None:
    missing = expect.get("missing_features")
    if missing is not None:
        per_window = missing if missing and isinstance(missing[0], list) else [missing] * len(windows)
        assert [list(w.missing_features) for w in windows] == per_window
    if "drifted" in expect:
        assert all(list(w.drifted_features) == expect["drifted"] for w in windows), \
            [w.drifted_features for w in windows]
    if "measures" in expect:
        assert all(sorted({r.measure for r in w.results}) == expect["measures"] for w in windows)
    if expect.get("finite_results"):
        assert all(math.isfinite(r.value) for w in windows for r in w.results)
        assert all(r.p_value is None or 0 <= r.p_value <= 1 for w in windows for r in w.results)


def _apply_fix(case: dict[str, Any], bad: MonitorRunner, store: Store, plugins: PluginManager,
               copied: list[Path], bad_dir: Path) -> MonitorRunner:
    """Fix the input as an operator would, then restart the monitor (a fresh runner)."""
    fix = case.get("fix", {})
    for index in fix.get("remove", []):
        copied[index].unlink()
    if "rewrite" in fix:  # in place, as logrotate's copytruncate: the same file, truncated, then written
        index, name = fix["rewrite"]
        with open(copied[index], "r+b") as file:
            file.truncate(0)
            file.write((CORPUS / name).read_bytes())
    if "replace" in fix:  # a new file renamed over the old one (a new inode under the same name)
        index, name = fix["replace"]
        staged = copied[index].with_name(".staged")
        shutil.copy(CORPUS / name, staged)
        os.replace(staged, copied[index])
    if "append" in fix:
        index, text = fix["append"]
        with open(copied[index], "a", encoding="utf-8", newline="") as file:
            file.write(text)
    if not fix.get("restart", True):
        return bad
    config = _monitor("bad", bad_dir, case, reference=fix.get("reference"))
    bad.close()
    return MonitorRunner(config, store, plugins, Metrics())


def _lay_out(steps: list[dict[str, Any]], bad_dir: Path, copied: list[Path]) -> None:
    """Arrange the source folder: sub-folders, inputs moved into them, symlinks (relative targets)."""
    for step in steps:
        if "mkdir" in step:
            (bad_dir / step["mkdir"]).mkdir(parents=True)
        elif "move" in step:
            target = bad_dir / step["to"]
            copied[step["move"]].rename(target)
            copied[step["move"]] = target
        elif "symlink" in step:
            os.symlink(step["to"], bad_dir / step["symlink"])
        else:
            raise AssertionError(f"unknown layout step {step}")


def _hanging_case(bad: MonitorRunner, good: MonitorRunner, module: ModuleType | None) -> None:
    assert module is not None
    outcome: list[BaseException | None] = []

    def tick() -> None:
        try:
            bad.tick()
            outcome.append(None)
        except BaseException as error:  # noqa: BLE001
            outcome.append(error)

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        assert len(good.tick().windows) == 2, "the other monitor keeps going while one hangs"
        thread.join(1.0)
        assert not thread.is_alive(), "the hanging fetch was not given up after a timeout"
        assert outcome and isinstance(outcome[0], SourceDown)
    finally:
        module.RELEASE.set()
        thread.join(10)
