"""Fixtures of the regulator console tests: one small real history per module, the console app
with the regulator check overridden, and (for the modules that ask) a real JupyterHub with a
regulator and an analyst account."""

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


# --- a real hub over the history (modules that ask for it get their own) ------------------------


@pytest.fixture(scope="module")
def hub(history: History) -> Iterator:
    from tests.regulator.hubsupport import start_hub

    running = start_hub(history.world.data_dir)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def admin(hub) -> Iterator:
    a = hub.admin()
    yield a
    a.close()


@pytest.fixture(scope="module")
def rita(hub, admin):
    from tests.regulator.hubsupport import make_account

    return make_account(hub, admin, "rita", "regulators")


@pytest.fixture(scope="module")
def carol(hub, admin):
    from tests.regulator.hubsupport import make_account

    return make_account(hub, admin, "carol", "analysts")


@pytest.fixture
def person(hub) -> Iterator:
    from tests.regulator.hubsupport import Person

    p = Person(hub)
    yield p
    p.close()
