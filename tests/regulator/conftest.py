"""Fixtures of the regulator console tests: one small real history per module."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from tests.regulator.support import History, build_history


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("SHUYU_")
             and k != "SHUYU_TEST_PG_URL"}
    try:
        return build_history(tmp_path_factory.mktemp("regulator-history"))
    finally:
        os.environ.update(saved)


@pytest.fixture
def app(history: History, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    from tests.regulator.support import console_app

    yield console_app(history, monkeypatch)


@pytest.fixture
def client(app) -> Iterator:
    from tests.regulator.support import regulator_client

    with regulator_client(app) as c:
        yield c


@pytest.fixture
def out_dir() -> Path:
    """tests/output/regulator: screenshots and bundles a person can look at (gitignored)."""
    path = Path(__file__).resolve().parents[1] / "output" / "regulator"
    path.mkdir(parents=True, exist_ok=True)
    return path
