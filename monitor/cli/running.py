"""``driftd run`` (the daemon) and ``driftd check`` (one pass, for CI and cron)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click

from monitor.cli.base import EXIT_DRIFT, EXIT_ERROR, EXIT_OK, config_option, fail, load, log, main
from monitor.cli.workers import Supervisor, refuse_workers, worker_config
from monitor.config import DriftdConfig, load_config
from monitor.daemon import Daemon
from monitor.daemon.engine import MonitorError
from monitor.http.face import HttpFace
from monitor.logs import LogFormat, setup_logging
from monitor.plugins import PluginConfigError
from monitor.store.migrate import SchemaOutOfDate


def build_daemon(config: DriftdConfig) -> Daemon:
    """The daemon of ``config``; a ``plugins:`` section its plugin refuses is one line and exit 2."""
    try:
        return Daemon(config)
    except PluginConfigError as error:
        fail(str(error))


@main.command()
@config_option
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              envvar="DRIFTD_LOG_FORMAT", help="Plain text, or one JSON object per line.")
@click.option("--workers", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Worker processes sharing the monitors through PostgreSQL leases (worker i serves HTTP on "
                   "server.port + i).")
@click.option("--worker-index", type=click.IntRange(0, 255), default=0, hidden=True)
@click.option("--worker-of", type=click.IntRange(1, 256), default=1, hidden=True)
def run(config_path: Path | None, log_format: LogFormat, workers: int, worker_index: int, worker_of: int) -> None:
    """Run the daemon (with no configuration: the built-in demo on embedded SQLite)."""
    config, is_demo = load(config_path)
    setup_logging(config.logging.level, log_format)
    if workers > 1:
        problem = refuse_workers(config, workers)
        if problem or config_path is None:
            fail(problem or f"--workers {workers}: the built-in demo runs on SQLite, a single replica")
        sys.exit(Supervisor(config_path, workers, log_format).run())
    config = worker_config(config, worker_index, worker_of)
    if is_demo:
        from monitor.cli.demo import DEMO_SHIFT_ROW
        log.info("no configuration file given: running the built-in demo (synthetic sensors drifting from "
                 "row %d, history in SQLite at %s); pass --config FILE to monitor your own data",
                 DEMO_SHIFT_ROW, config.storage.url)
    else:
        log.info("configuration: %s", config_path)
    daemon = build_daemon(config)
    HttpFace.attach(daemon)
    try:
        daemon.run_forever(None if is_demo else lambda: worker_config(load_config(config_path), worker_index,
                                                                   worker_of))
    except SchemaOutOfDate as error:
        fail(str(error))
    except RuntimeError as error:
        fail(str(error))
    if daemon.fetch_pool.hung():
        # Python joins every pool thread at exit, and a connector call that never returns would keep the
        # process up until systemd kills it: everything is stopped and committed, so end here
        logging.shutdown()
        os._exit(EXIT_OK)


@main.command()
@config_option
@click.option("--max-batches", default=100, show_default=True, type=click.IntRange(0, 1_000_000),
              help="Fetches per monitor at most (0: report the stored state without fetching).")
@click.option("--adapt", is_flag=True, help="Also run the adaptations that drift queued, before exiting.")
def check(config_path: Path | None, max_batches: int, adapt: bool) -> None:
    """One pass over every monitor; exit 0 no drift, 1 drift, 2 error."""
    config, _ = load(config_path)
    setup_logging("WARNING")
    daemon = build_daemon(config)
    try:
        daemon.prepare()
    except SchemaOutOfDate as error:
        fail(str(error))
    status = EXIT_ERROR if daemon.broken else EXIT_OK
    for name, problem in daemon.broken.items():
        click.echo(f"{name}: ERROR {problem}")
    lines: list[str] = []
    with click.progressbar(daemon.runners.items(), label="checking monitors", file=sys.stderr,
                           hidden=not sys.stderr.isatty()) as runners:
        for name, runner in runners:
            last = daemon.store.overview(name).last_window
            windows, state = 0, last.state if last else "no windows yet"
            try:
                for _ in range(max_batches):
                    report = runner.tick()
                    windows += len(report.windows)
                    state = report.state
                    if report.rows_fetched == 0:
                        break
            except MonitorError as error:
                lines.append(f"{name}: ERROR {error}")
                status = EXIT_ERROR
                continue
            lines.append(f"{name}: {state} ({windows} new window(s))")
            if state == "drift" and status == EXIT_OK:
                status = EXIT_DRIFT
    for line in lines:
        click.echo(line)
    for name in daemon.runners if adapt else []:
        daemon.adaptation.run_pending(name)
    daemon.outbox.drain()  # hooks and notifiers hear of this pass before the process ends
    daemon.stop()
    sys.exit(status)
