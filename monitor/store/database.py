"""The connection to driftd's SQL history: engine, sessions, and the monitors' ids."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from monitor.redact import cut, mask_urls
from monitor.store.crashpoints import watch
from monitor.store.migrate import check_schema
from monitor.store.schema import Monitor


class StoreError(Exception):
    """The history database refused an operation."""


#: The extra that installs the driver of each database driftd keeps its history in.
DRIVER_EXTRAS = {"postgresql": "postgres", "mysql": "mysql"}


def storage_url(url: str) -> str:
    """The SQLAlchemy URL of the history database; StoreError saying what to do when it cannot be used.

    ``postgres://`` (as many hosting services write it) means PostgreSQL; a missing driver names
    the extra that installs it.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError, TypeError):
        raise StoreError(f"storage.url {cut(repr(mask_urls(url)), 80)} is not a database URL (e.g. "
                         "sqlite:///driftd.db or postgresql+psycopg://user@host/db)") from None
    if parsed.drivername.partition("+")[0] == "postgres":
        url = "postgresql" + url.strip()[len("postgres"):]
        parsed = make_url(url)
    try:
        parsed.get_dialect().import_dbapi()
    except NoSuchModuleError:
        raise StoreError(f"storage.url: unknown database {cut(parsed.drivername, 40)!r} (driftd keeps its history "
                         "in sqlite:// or postgresql://)") from None
    except ImportError as error:
        backend = parsed.get_backend_name()
        extra = DRIVER_EXTRAS.get(backend)
        fix = f"pip install 'driftd[{extra}]'" if extra else f"install the driver for {backend}"
        raise StoreError(f"storage.url {mask_urls(url)}: the {backend} driver is not installed "
                         f"({error.name or error}): {fix}") from None
    return url


def _is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def create_db_engine(url: str) -> Engine:
    """An engine for ``url`` with the settings driftd relies on."""
    if _is_sqlite(url):
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


class Database:
    """An engine on the history database, its sessions, and the monitor registry every part shares."""

    def __init__(self, url: str) -> None:
        self.url = storage_url(url)
        self.is_sqlite = _is_sqlite(self.url)
        self.engine = create_db_engine(self.url)
        watch(self.engine)  # test-only crash points; nothing unless DRIFTD_CRASH_AT/TRACE is set
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def describe(self) -> str:
        """The URL with any password masked, for logs (however malformed the URL)."""
        return mask_urls(self.url)

    def prepare(self) -> None:
        """Check the schema is current; an embedded SQLite database is migrated automatically."""
        check_schema(self.engine, auto_migrate=self.is_sqlite)

    def ping(self) -> None:
        """Raise if the database cannot be reached."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def _session(self) -> Session:
        return self._sessions()

    def monitor_id(self, name: str) -> int:
        """The id of the monitor named ``name``, registering it on first sight."""
        with self._session() as session:
            found = session.scalar(select(Monitor.id).where(Monitor.name == name))
            if found is not None:
                return found
            try:
                monitor = Monitor(name=name)
                session.add(monitor)
                session.commit()
                return monitor.id
            except IntegrityError:
                session.rollback()
                return session.scalars(select(Monitor.id).where(Monitor.name == name)).one()

    def _require_monitor(self, session: Session, name: str) -> int:
        found = session.scalar(select(Monitor.id).where(Monitor.name == name))
        if found is None:
            raise StoreError(f"monitor {name!r} has no history in {self.describe()}")
        return found

    def _monitor_id_or_none(self, session: Session, name: str) -> int | None:
        return session.scalar(select(Monitor.id).where(Monitor.name == name))
