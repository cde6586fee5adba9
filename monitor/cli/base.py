"""What every ``driftd`` command shares: the top-level group, the ``--config`` option, loading the
configuration and the store, and one clean error line (exit 2) instead of a traceback."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import NoReturn

import click
from sqlalchemy.exc import SQLAlchemyError

from monitor import __version__
from monitor.config import ConfigError, DriftdConfig, load_config
from monitor.redact import mask_urls, safe_line
from monitor.store import Store, StoreError
from monitor.store.database import storage_url
from monitor.store.migrate import SchemaOutOfDate

log = logging.getLogger("driftd")

EXIT_OK, EXIT_DRIFT, EXIT_ERROR = 0, 1, 2

config_option = click.option(
    "-c", "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
    envvar="DRIFTD_CONFIG", help="YAML configuration file (default: $DRIFTD_CONFIG, else the built-in demo).",
)


def fail(message: str) -> NoReturn:
    """Print one error line (URL passwords masked) and exit 2."""
    click.echo(f"driftd: error: {mask_urls(message)}", err=True)
    sys.exit(EXIT_ERROR)


def load(config_path: Path | None) -> tuple[DriftdConfig, bool]:
    """The configuration, and whether it is the built-in demo."""
    try:
        if config_path is None:
            from monitor.cli.demo import demo_config
            config, is_demo = demo_config(), True
        else:
            config, is_demo = load_config(config_path), False
    except ConfigError as error:
        fail(str(error))
    try:
        storage_url(config.storage.url)  # every command says the same when the database cannot be used
    except StoreError as error:
        fail(f"{config_path or 'built-in demo'}: {error}")
    context = click.get_current_context(silent=True)
    if context is not None:
        context.meta[_STORAGE_KEY] = config.storage.url
    return config, is_demo


_STORAGE_KEY = "driftd.storage_url"


def _database_problem(error: SQLAlchemyError, url: str | None) -> str:
    """One line for a database failure: where (password hidden) and the driver's own reason."""
    cause = getattr(error, "orig", None) or error
    where = mask_urls(url) if url else "the database"
    reason = safe_line(str(cause)) or type(cause).__name__
    return f"{where}: {type(cause).__name__}: {reason}"


class _Main(click.Group):
    """The top-level group: a database that cannot be reached is one clean line and exit 2, not a traceback."""

    def invoke(self, ctx: click.Context):  # noqa: ANN201 - click's own signature
        try:
            return super().invoke(ctx)
        except SQLAlchemyError as error:
            fail(_database_problem(error, ctx.meta.get(_STORAGE_KEY)))
        except StoreError as error:
            fail(str(error))


def open_store(config: DriftdConfig) -> Store:
    store = Store(config.storage.url)
    try:
        store.prepare()
    except SchemaOutOfDate as error:
        fail(str(error))
    return store


@click.group(cls=_Main)
@click.version_option(__version__, prog_name="driftd")
def main() -> None:
    """driftd: watch live data drift away from its reference, keep the history, export metrics."""
