"""The console's API behind the pages, fuzzed from its OpenAPI document with schemathesis.

Every ``/console/…`` operation of the ledger service is called with generated inputs (valid and
invalid) on the real history; schemathesis checks that nothing answers 5xx, that statuses,
content types and JSON bodies match what the document declares, and that input the document
rules out is refused. The regulator check is the one dependency overridden (a fixed regulator)."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.regulator.support import console_app, regulator_client

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fuzz_app(history):
    mp = pytest.MonkeyPatch()
    app = console_app(history, mp)
    client = regulator_client(app)
    with client:  # runs the lifespan once: the log stays open for every generated call
        yield app
    mp.undo()


@pytest.fixture(scope="module")
def operations(fuzz_app) -> list:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app).include(
        path_regex=r"^/console/")
    ops = [result.ok() for result in schema.get_all_operations()]
    assert len(ops) >= 12
    return ops


def test_the_console_api_is_valid_openapi(fuzz_app) -> None:
    document = TestClient(fuzz_app).get("/openapi.json").json()
    validate(document)
    paths = [p for p in document["paths"] if p.startswith("/console/")]
    assert {"/console/api/events", "/console/api/activity", "/console/api/verification",
            "/console/evidence.zip", "/console/disclosure.json"} <= set(paths)


def test_console_api_conforms_to_its_schema(operations) -> None:
    """(Driven with Hypothesis directly: schemathesis's pytest plugin predates pytest 9.)"""
    for op in operations:

        @given(case=op.as_strategy())
        @settings(max_examples=25, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case) -> None:
            # A form may refuse schema-valid input on meaning (a start after the end, 30 February,
            # a year out of range) with a 400 page that explains it; that is the design, so the
            # "valid data is accepted" check is left out. Every other check applies.
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        try:
            check()
        except Exception as e:
            raise AssertionError(f"{op.method.upper()} {op.path}: {e}") from e
