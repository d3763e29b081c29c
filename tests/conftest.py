"""Shared fixtures: isolated data directories and real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

# Session fixtures of the gateway and client tests: a real data domain and a real JupyterHub
# (only started by tests that ask for them).
pytest_plugins = ["tests.gateway.fixtures"]

PG_ADMIN_URL = os.environ.get(
    "SHUYU_TEST_PG_URL", "postgresql+psycopg://shuyu_test:shuyu_test@127.0.0.1:5432/shuyu_test"
)


@pytest.fixture(autouse=True)
def _isolate_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's shuyu.toml or SHUYU_* variables."""
    for key in list(os.environ):
        if key.startswith("SHUYU_") and key != "SHUYU_TEST_PG_URL":
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def pg_url() -> str:
    """A fresh, empty PostgreSQL database on the real server started by `make test`."""
    from sqlalchemy import create_engine, text

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
