"""Shared fixtures: real databases (SQLite in a temp dir, a fresh PostgreSQL database per test)."""

from __future__ import annotations

import importlib
import os
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

#: The PostgreSQL server the integration tests use; override with DRIFTD_TEST_POSTGRES_URL.
POSTGRES_ADMIN_URL = os.environ.get("DRIFTD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def under_ci() -> bool:
    """True under CI, where a missing service is a failure rather than a skip."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_module(name: str) -> Any:
    """Import an optional dependency; skip without it, except under CI where it must be installed."""
    if under_ci():
        return importlib.import_module(name)
    return pytest.importorskip(name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database file in the test's temp directory."""
    return f"sqlite:///{tmp_path / 'driftd.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the local server, dropped afterwards."""
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"driftd_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:  # noqa: BLE001
        admin.dispose()
        if under_ci():
            pytest.fail(f"PostgreSQL at {POSTGRES_ADMIN_URL} is required under CI: {error}")
        pytest.skip(f"PostgreSQL at {POSTGRES_ADMIN_URL} is not reachable: {type(error).__name__}")
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """The same test on embedded SQLite and on the PostgreSQL server."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
