"""The console's HTTP API (the endpoints behind its pages) fuzzed with Schemathesis.

The app runs in-process over its own real data domain (ledger, catalog, domain store) and talks
to the real hub of the session (the console tests' ``console_hub``) for analyst accounts, with
the hub's administrator token. Only the login is replaced (``dependency_overrides``): every
request acts as an authority user with a valid form token. Schemathesis generates requests from
the OpenAPI document (forms, uploads, path and query parameters) and checks that no answer is a
server error and every status, content type and JSON body is the documented one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest
import schemathesis
from fastapi import FastAPI, Request
from hypothesis import HealthCheck, given, settings

from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from hub.console import cookies
from hub.console.config import ConsoleConfig
from hub.console.deps import checked_form, current_user
from hub.console.main import create_app
from hub.console.oauth import HubUser
from tests.console.conftest import PREFIX, hub_db
from tests.gateway.hubprocess import RealHub
from tests.gateway.world import build_world

EXAMPLES = 20  # per operation
FUZZER = HubUser("fuzz.authority", ("authority",), frozenset(), "fuzz-session-token")


def _as_authority(request: Request) -> HubUser:
    request.state.user_name = FUZZER.name
    request.state.csrf = cookies.csrf_token(request.app.state.cookie_key, FUZZER.token)
    return FUZZER


def _no_token_check() -> None:
    return None


@pytest.fixture(scope="module")
def console_app(console_hub: RealHub, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[FastAPI]:
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("SHUYU_")}
    try:
        world = build_world(tmp_path_factory.mktemp("console-fuzz"), scale=200)
    finally:
        os.environ.update(saved)
    config = ConsoleConfig(hub_api_url=console_hub.api_url, api_token=console_hub.admin_token,
                           sweep_interval_seconds=0, sandbox_prefix=PREFIX + "-fuzz",
                           hub_db_url=f"sqlite:///{hub_db(console_hub)}",
                           max_upload_bytes=1 << 20)
    app = create_app(config, world.settings)
    app.dependency_overrides[current_user] = _as_authority
    app.dependency_overrides[checked_form] = _no_token_check
    with __import__("fastapi.testclient", fromlist=["TestClient"]).TestClient(app):
        yield app  # the lifespan runs (and closes the service) around the module


def test_console_api_conforms_to_its_openapi_document(console_app: FastAPI) -> None:
    """Every operation of the document, with generated requests (Schemathesis strategies run
    by Hypothesis here: Schemathesis's own pytest plugin does not run under pytest 9)."""
    schema = schemathesis.openapi.from_asgi("/services/console/openapi.json", console_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case) -> None:  # type: ignore[no-untyped-def]
            # the login is replaced here, so "ignored auth" would only find the override (the
            # real login is tested against the real hub, test_login.py); and the catalog's rules
            # (check characters, five-year terms, grades) are beyond JSON Schema, so a
            # schema-valid form may rightly get the documented 422 with its reason
            case.call_and_validate(excluded_checks=[ignored_auth, positive_data_acceptance])

        run()


def test_openapi_document_is_valid_and_documents_the_pages(console_app: FastAPI) -> None:
    from openapi_spec_validator import validate

    doc = console_app.openapi()
    validate(doc)
    paths = doc["paths"]
    for path in ("/services/console/datasets", "/services/console/uploads/{upload_id}",
                 "/services/console/uploads/{upload_id}/register",
                 "/services/console/authorizations/{auth_id}/revoke",
                 "/services/console/requests/{request_id}/approve",
                 "/services/console/api/uploads/{upload_id}"):
        assert path in paths, path
    upload = paths["/services/console/uploads/{upload_id}"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert Path(__file__).exists()
