"""A first-run user sees the demo quiet first (nothing flagged before its shift), then drift."""

from __future__ import annotations

from pathlib import Path

from monitor.cli.demo import DEMO_REFERENCE_ROWS, DEMO_SHIFT_ROW, DEMO_WINDOW_ROWS, demo_config
from tests.helpers import make_runner


def test_the_demo_is_quiet_before_its_shift_then_drifts(tmp_path: Path) -> None:
    config = demo_config(environ={}).monitors[0]
    runner = make_runner(config, f"sqlite:///{tmp_path / 'driftd.db'}")
    windows = []
    while len(windows) < 6:
        windows += runner.tick(retry_now=True).windows
    quiet = (DEMO_SHIFT_ROW - DEMO_REFERENCE_ROWS) // DEMO_WINDOW_ROWS
    assert quiet == 3
    assert [(w.state, w.drifted_features) for w in windows[:quiet]] == [("ok", [])] * quiet
    assert not any(r.drifted for w in windows[:quiet] for r in w.results)
    assert windows[4].state == "drift" and windows[4].starts_event
