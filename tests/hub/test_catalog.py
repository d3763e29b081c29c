"""The catalog: datasets, providers, operators, analysts; validation, ledger entries, import."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from hub.catalog.enums import Grade, IdentifierClass, OpenAttribute, Role, highest_grade
from hub.catalog.events import Actor
from hub.catalog.exceptions import AlreadyExists, InvalidInput, NotFound, PermissionDenied
from hub.catalog.importer import import_catalog, load_catalog_file, parse_catalog
from hub.catalog.records import ColumnRecord
from hub.catalog.validation import credit_code
from tests.hub import test_catalog_support as support
from tests.hub.test_catalog_support import (
    ALICE,
    AUTHORITY,
    CREDIT_CODE,
    OPERATOR,
    RESIDENTS,
    SAMPLE,
    TRIPS,
    Env,
    catalog_json,
    create_agreement,
    sample_catalog,
    write_catalog,
)

env = support.env  # the fixture, on SQLite and PostgreSQL


def snapshot(env: Env) -> tuple:
    """Everything stored, to prove a refusal changed nothing."""
    svc = env.service
    return (
        [d.to_json() for d in svc.list_datasets()],
        [o.to_json() for o in svc.list_operators()],
        [a.to_json() for a in svc.list_analysts()],
        [a.to_json() for a in svc.list_authorizations()],
    )


def new_entry_types(env: Env, since: int) -> list[str]:
    return env.types()[since:]


# --- datasets -----------------------------------------------------------------------------


def test_register_dataset_writes_the_ledger_first_and_reads_back(env: Env) -> None:
    ds, outcome = env.service.register_dataset(AUTHORITY, RESIDENTS)
    assert outcome == "registered"
    assert ds.columns == RESIDENTS.columns and ds.grade is Grade.GENERAL
    assert ds.registered_at == env.clock() and ds.acquired_on == date(2026, 2, 1)
    assert env.types() == ["provider.registered", "dataset.registered"]
    entry = env.last("dataset.registered")
    assert entry["actor"] == "zhang.wei" and entry["role"] == "authority"
    assert entry["dataset"] == "residents"
    details = entry["details"]
    assert details["grade"] == "general" and details["grade_label"] == "一般"
    assert details["open_attribute"] == "conditional"
    assert details["registration_code"] == "KM-GA-0001" and details["version"] == "2026.02"
    assert details["acquired_on"] == "2026-02-01" and details["provider"] == "昆明市公安局"
    assert [c["name"] for c in details["columns"]] == list(RESIDENTS.column_names)
    assert details["columns"][0]["identifier_class"] == "direct_identifier"
    assert details["source"] == "test"


def test_registering_the_same_dataset_again_changes_nothing(env: Env) -> None:
    env.service.register_dataset(AUTHORITY, RESIDENTS)
    size = env.log.store.head().size
    ds, outcome = env.service.register_dataset(AUTHORITY, RESIDENTS)
    assert outcome == "unchanged" and ds.revision == 1
    assert env.log.store.head().size == size


def test_updating_a_dataset_records_what_changed_and_who_is_affected(env: Env) -> None:
    sample_catalog(env)
    auth = create_agreement(env)
    env.clock.advance(days=30)
    newer = replace(
        RESIDENTS, version="2026.03", acquired_on=date(2026, 3, 1),
        columns=RESIDENTS.columns[:-1] + (ColumnRecord("income", "DOUBLE",
                                                       IdentifierClass.SENSITIVE, False),),
    )
    ds, outcome = env.service.register_dataset(AUTHORITY, newer)
    assert outcome == "updated" and ds.version == "2026.03" and ds.revision == 2
    assert ds.registered_at < ds.updated_at == env.clock()
    changes = env.last("dataset.updated")["details"]
    assert changes["changes"]["fields"]["version"] == ["2026.02", "2026.03"]
    assert changes["changes"]["columns_added"] == ["income"]
    assert changes["changes"]["columns_removed"] == ["education"]
    assert changes["affected_authorizations"] == [auth.id]
    assert env.service.get_dataset("residents").column("income") is not None


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(name="Residents"), "dataset name 'Residents' is not valid"),
        (dict(name="1st"), "dataset name '1st' is not valid"),
        (dict(columns=()), "has no columns"),
        (dict(columns=RESIDENTS.columns + RESIDENTS.columns[:1]), "listed more than once"),
        (dict(columns=(ColumnRecord("id", "VARCHAR", IdentifierClass.DIRECT_IDENTIFIER, True),)),
         "direct identifier and cannot be a group-by dimension"),
        (dict(columns=(ColumnRecord("bad name", "INT", IdentifierClass.OTHER, False),)),
         "column name 'bad name'"),
        (dict(columns=(ColumnRecord("x", "", IdentifierClass.OTHER, False),)), "type of column"),
        (dict(grade="secret"), "grade of dataset 'residents' 'secret' is not one of"),
        (dict(open_attribute="maybe"), "is not one of"),
        (dict(provider="  "), "provider of dataset 'residents' is required"),
        (dict(description="x" * 5000), "limit is 4000"),
        (dict(title="a\x00b"), "control characters"),
    ],
)
def test_bad_dataset_specs_are_refused_and_nothing_is_stored(
    env: Env, change: dict, message: str
) -> None:
    env.service.register_dataset(AUTHORITY, replace(RESIDENTS, name="existing"))
    before, size = snapshot(env), env.log.store.head().size
    with pytest.raises(InvalidInput, match=message):
        env.service.register_dataset(AUTHORITY, replace(RESIDENTS, **change))
    assert snapshot(env) == before
    assert env.log.store.head().size == size


def test_a_registration_code_belongs_to_one_dataset(env: Env) -> None:
    env.service.register_dataset(AUTHORITY, RESIDENTS)
    before, size = snapshot(env), env.log.store.head().size
    with pytest.raises(AlreadyExists, match="KM-GA-0001.*already belongs to dataset 'residents'"):
        env.service.register_dataset(AUTHORITY, replace(RESIDENTS, name="residents_copy"))
    assert snapshot(env) == before
    assert env.log.store.head().size == size


def test_only_the_authority_registers_datasets_and_refusals_are_logged(env: Env) -> None:
    sample_catalog(env)
    before = snapshot(env)
    for actor in (Actor("someone", Role.REVIEWER), Actor("alice", Role.AUTHORITY)):
        with pytest.raises(PermissionDenied):
            env.service.register_dataset(actor, replace(RESIDENTS, name="other"))
    assert snapshot(env) == before
    refusals = [e for e in env.entries() if e["type"] == "catalog.action_refused"]
    assert [r["actor"] for r in refusals] == ["someone", "alice"]
    assert refusals[1]["details"]["code"] == "permission_denied"
    assert "registered analyst and may not act as authority" in refusals[1]["details"]["reason"]


def test_consent_for_shared_data_is_recorded_once_and_kept_across_reimport(env: Env) -> None:
    env.service.register_dataset(AUTHORITY, TRIPS)
    env.service.register_dataset(AUTHORITY, RESIDENTS)
    with pytest.raises(InvalidInput, match="not marked as received through 政务数据共享"):
        env.service.record_consent(AUTHORITY, "residents", "doc-1")
    ds = env.service.record_consent(AUTHORITY, "bus_trips", "云交函〔2026〕12号")
    assert ds.consent_reference == "云交函〔2026〕12号"
    entry = env.last("dataset.consent_recorded")
    assert entry["details"]["shared_source"] == "云南省交通运输厅"
    again, outcome = env.service.register_dataset(AUTHORITY, TRIPS)
    assert outcome == "unchanged" and again.consent_reference == "云交函〔2026〕12号"


def test_grades_rank_and_the_highest_wins() -> None:
    assert highest_grade([Grade.GENERAL, Grade.IMPORTANT]) is Grade.IMPORTANT
    assert highest_grade([Grade.CORE, Grade.GENERAL]) is Grade.CORE
    assert Grade.parse("重要") is Grade.IMPORTANT
    assert OpenAttribute.parse("不予开放") is OpenAttribute.NOT_OPEN
    with pytest.raises(ValueError):
        highest_grade([])


# --- operators and analysts --------------------------------------------------------------------


def test_operators_and_analysts_are_created_with_ledger_entries(env: Env) -> None:
    sample_catalog(env)
    ops = env.service.list_operators()
    assert {o.name for o in ops} == {OPERATOR, "滇池数据服务有限公司"}
    created = [e for e in env.entries() if e["type"] == "operator.created"]
    assert created[0]["operator"] == OPERATOR
    assert created[0]["details"]["credit_code"] == CREDIT_CODE
    assert created[0]["details"]["security_officer"] == "王安"
    added = [e for e in env.entries() if e["type"] == "analyst.added"]
    assert [(e["details"]["user_name"], e["operator"]) for e in added] == [
        ("alice", OPERATOR), ("bob", OPERATOR), ("carol", "滇池数据服务有限公司")]
    assert [a.user_name for a in env.service.list_analysts(OPERATOR)] == ["alice", "bob"]


def test_operator_and_analyst_refusals_leave_state_intact(env: Env) -> None:
    sample_catalog(env)
    before, size = snapshot(env), env.log.store.head().size
    svc = env.service
    with pytest.raises(AlreadyExists, match="operator '云数科技有限公司' already exists"):
        svc.create_operator(AUTHORITY, OPERATOR)
    with pytest.raises(AlreadyExists, match="already belongs to operator"):
        svc.create_operator(AUTHORITY, "另一家公司", CREDIT_CODE)
    with pytest.raises(InvalidInput, match="check character"):
        svc.create_operator(AUTHORITY, "另一家公司", CREDIT_CODE[:-1] + "4")
    with pytest.raises(InvalidInput, match="18 characters"):
        svc.create_operator(AUTHORITY, "另一家公司", "12345")
    with pytest.raises(InvalidInput, match="operator name is required"):
        svc.create_operator(AUTHORITY, " ")
    with pytest.raises(AlreadyExists, match="analyst 'alice' already exists"):
        svc.add_analyst(AUTHORITY, "alice", "滇池数据服务有限公司")
    with pytest.raises(InvalidInput, match="user name 'Dave Smith' is not valid"):
        svc.add_analyst(AUTHORITY, "Dave Smith", OPERATOR)
    with pytest.raises(NotFound, match="operator 'nobody' does not exist"):
        svc.add_analyst(AUTHORITY, "dave", "nobody")
    with pytest.raises(InvalidInput, match="cannot register themself"):
        svc.add_analyst(AUTHORITY, "zhang.wei", OPERATOR)
    with pytest.raises(PermissionDenied, match="analyst and may not"):
        svc.add_analyst(ALICE, "dave", OPERATOR)
    assert snapshot(env) == before
    assert new_entry_types(env, size) == ["catalog.action_refused"]


@pytest.mark.parametrize("code", ["91350100M000100Y43", "91110000600037341L",
                                  "91440300708461136T"])
def test_credit_codes_with_valid_check_characters(code: str) -> None:
    assert credit_code(code.lower()) == code


def test_a_security_officer_can_be_named_later(env: Env) -> None:
    sample_catalog(env)
    op = env.service.set_security_officer(AUTHORITY, "滇池数据服务有限公司", "赵敏")
    assert op.security_officer == "赵敏" and op.revision == 2
    assert env.last("operator.updated")["details"]["security_officer"] == [None, "赵敏"]


# --- catalog.json import -----------------------------------------------------------------------


def test_import_catalog_registers_then_is_idempotent(env: Env, tmp_path: Path) -> None:
    path = write_catalog(tmp_path / "catalog.json", catalog_json())
    seen: list[tuple[str, str]] = []
    summary = import_catalog(env.service, AUTHORITY, load_catalog_file(path),
                             lambda spec, outcome: seen.append((spec.name, outcome)))
    assert summary.registered == [s.name for s in SAMPLE] and not summary.updated
    assert seen[0] == ("residents", "registered")
    stored = env.service.get_dataset("contributions")
    assert stored.grade is Grade.IMPORTANT and stored.update_frequency == "monthly"
    assert stored.column("month").group_by_allowed
    size = env.log.store.head().size
    again = import_catalog(env.service, AUTHORITY, load_catalog_file(path))
    assert again.unchanged == [s.name for s in SAMPLE]
    assert env.log.store.head().size == size


def test_import_accepts_alternative_spellings() -> None:
    data = {"datasets": [{
        "name": "water_use", "provider": "昆明市水务局", "grade": "一般数据",
        "openness": "无条件开放", "acquisition_date": "2026-02-28T00:00:00+08:00",
        "columns": [{"name": "household", "type": "VARCHAR", "class": "准标识符",
                     "groupable": True}],
    }]}
    [spec] = parse_catalog(data)
    assert spec.open_attribute is OpenAttribute.UNCONDITIONAL
    assert spec.acquired_on == date(2026, 2, 28)
    assert spec.columns[0].identifier_class is IdentifierClass.QUASI_IDENTIFIER


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["datasets"][2].pop("grade"), "dataset 'contributions': grade is missing"),
        (lambda d: d["datasets"][0]["columns"][1].update(identifier_class="secretish"),
         "column 'name': class 'secretish' is not one of"),
        (lambda d: d["datasets"][0]["columns"][2].update(group_by_allowed="yes"),
         "group_by must be true or false"),
        (lambda d: d["datasets"][1].update(name="residents"), "listed more than once"),
        (lambda d: d["datasets"][1].update(acquired_on="yesterday"), "is not a date"),
        (lambda d: d.update(datasets=[]), "lists no datasets"),
        (lambda d: d.update(datasets={"a": 1}), "must be a list of datasets"),
        (lambda d: d.update(format="shuyu-catalog/2"), "this reader knows shuyu-catalog/1"),
        (lambda d: d["datasets"][0].update(title=["x"]), "title must be text"),
    ],
)
def test_a_bad_catalog_file_imports_nothing(env: Env, tmp_path: Path, mutate, message) -> None:
    data = catalog_json()
    mutate(data)
    path = write_catalog(tmp_path / "catalog.json", data)
    with pytest.raises(InvalidInput, match=message):
        import_catalog(env.service, AUTHORITY, load_catalog_file(path))
    assert env.service.list_datasets() == []
    assert env.log.store.head().size == 0


def test_unreadable_catalog_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot read catalog"):
        load_catalog_file(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InvalidInput, match="is not JSON"):
        load_catalog_file(tmp_path / "bad.json")


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_concurrent_openers_create_the_tables_once(backend: str, tmp_path: Path,
                                                   request: pytest.FixtureRequest) -> None:
    import threading

    from hub.catalog.storage import SqlAlchemyCatalogStore

    url = (f"sqlite:///{tmp_path / 'control.db'}" if backend == "sqlite"
           else request.getfixturevalue("pg_url"))
    stores = [SqlAlchemyCatalogStore(url, ledger=None) for _ in range(4)]  # type: ignore[arg-type]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(stores))

    def create(store: SqlAlchemyCatalogStore) -> None:
        barrier.wait()
        try:
            store.create()
        except BaseException as e:  # noqa: BLE001 - collected for the assertion
            errors.append(e)

    threads = [threading.Thread(target=create, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert errors == []
