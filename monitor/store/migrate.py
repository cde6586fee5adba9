"""Schema migrations with Alembic, driven from code (no alembic.ini needed)."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

#: Alembic's scripts: ``migrations/`` at the repository root, installed as the ``monitor.migrations`` package.
MIGRATIONS = Path(find_spec("monitor.migrations").origin).parent  # type: ignore[union-attr,arg-type]


class SchemaOutOfDate(Exception):
    """The database schema is older (or newer) than this driftd."""


def _alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest schema revision this driftd knows."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (None when it has no driftd tables yet)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database to ``revision``."""
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), revision)


def check_schema(engine: Engine, auto_migrate: bool) -> None:
    """Raise SchemaOutOfDate unless the schema is current; migrate first when ``auto_migrate``."""
    current, head = current_revision(engine), head_revision()
    if current == head:
        return
    if auto_migrate:
        upgrade(engine)
        return
    known = {script.revision for script in ScriptDirectory.from_config(_alembic_config()).walk_revisions()}
    if current is not None and current not in known:
        raise SchemaOutOfDate(
            f"the database schema is at revision {current}, which this driftd does not know "
            f"(newer than {head}?); upgrade driftd"
        )
    raise SchemaOutOfDate(
        f"the database schema is at revision {current or 'none (empty database)'}, driftd needs "
        f"{head}: run `driftd db upgrade` first"
    )
