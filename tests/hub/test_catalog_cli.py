"""`shuyu authority …` end to end: in-process with click's runner (SQLite and PostgreSQL), and as
subprocesses importing a catalog that `shuyu data generate` really wrote."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ledger.cli import log_config
from ledger.entry import decode_entry
from ledger.log import Log
from shuyu_server.cli import cli
from shuyu_server.settings import LedgerSettings, load_settings
from tests.hub.test_catalog_support import CREDIT_CODE, catalog_json, write_catalog

SHUYU = [sys.executable, "-c", "from shuyu_server.cli import main; main()"]


class Shuyu:
    """Runs `shuyu …` in-process against one data directory and one pair of databases."""

    def __init__(self, data_dir: Path, env: dict[str, str]):
        self.data_dir = data_dir
        self.env = env
        self.runner = CliRunner()

    def __call__(self, *args: str, code: int = 0, actor: str = "zhang.wei") -> Result:
        argv = [*args, "--data-dir", str(self.data_dir)]
        result = self.runner.invoke(cli, argv, env={**self.env, "SHUYU_ACTOR": actor})
        assert result.exit_code == code, (argv, result.output, result.stderr)
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)

    def ledger_types(self) -> list[str]:
        url = self.env.get("SHUYU_LEDGER__DATABASE_URL")
        settings = load_settings(data_dir=self.data_dir,
                                 ledger=LedgerSettings(database_url=url) if url else None)
        log = Log.open(log_config(settings))
        try:
            size = log.store.head().size
            return [decode_entry(bytes(d))["type"] for _, d, _ in log.store.entries(0, size)]
        finally:
            log.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shuyu(request: pytest.FixtureRequest, tmp_path: Path) -> Shuyu:
    env: dict[str, str] = {}
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        env = {"SHUYU_CONTROL__DATABASE_URL": url, "SHUYU_LEDGER__DATABASE_URL": url}
    run = Shuyu(tmp_path / "var", env)
    run("ledger", "init")
    return run


def test_the_authority_workflow_through_the_cli(shuyu: Shuyu, tmp_path: Path) -> None:
    path = write_catalog(tmp_path / "catalog.json", catalog_json())
    out = shuyu("authority", "import-catalog", str(path)).stdout
    assert "registered: 6 (residents, enterprises, contributions" in out
    assert "unchanged: 6" in shuyu("authority", "import-catalog", str(path)).stdout
    names = [d["name"] for d in shuyu.json("authority", "dataset", "list")]
    assert names == sorted(["residents", "enterprises", "contributions", "power_grid",
                            "court_cases", "bus_trips"])
    assert "直接标识符" in shuyu("authority", "dataset", "show", "residents").stdout
    shuyu("authority", "dataset", "consent", "bus_trips", "--reference", "云交函〔2026〕12号")

    shuyu("authority", "operator", "create", "云数科技", "--credit-code", CREDIT_CODE)
    shuyu("authority", "operator", "officer", "云数科技", "王安")
    shuyu("authority", "analyst", "add", "alice", "--operator", "云数科技")
    assert shuyu.json("authority", "analyst", "list")[0]["operator"] == "云数科技"

    today = date.today()
    end = (today + timedelta(days=365)).isoformat()
    create = ["authority", "authorization", "create", "--operator", "云数科技",
              "--analyst", "alice", "--scenario", "人口分布", "--use-class", "公益",
              "--end", end]
    refused = shuyu(*create, "--dataset", "power_grid", code=1)
    assert "error: dataset 'power_grid' is graded 核心" in refused.stderr
    refused = shuyu(*create, "--dataset", "contributions", "--mode",
                    "contributions=row_level", code=1)
    assert "only be authorized aggregate_only" in refused.stderr
    refused = shuyu(*create, "--dataset", "residents", "--mode", "residents", code=1)
    assert "--mode must look like DATASET=VALUE" in refused.stderr
    auth_id = shuyu(*create, "--dataset", "residents:district,birth_year", "--mode",
                    "residents=row_level", "--epsilon", "residents=2", "--dataset",
                    "contributions").stdout.strip()
    [listed] = shuyu.json("authority", "authorization", "list", "--status", "active")
    assert listed["id"] == auth_id and listed["scope"][1]["columns"] == ["birth_year", "district"]
    assert listed["ends_at"].startswith((today + timedelta(days=365)).isoformat())

    grant = json.loads(shuyu("authority", "check", "alice", "residents", "--columns",
                             "district").stdout)
    assert grant["access_mode"] == "row_level" and grant["epsilon"] == 2.0
    no = shuyu("authority", "check", "alice", "residents", "--columns", "name", code=3)
    assert "refused: alice may not query residents: column(s) name are outside" in no.stderr

    req_id = shuyu("authority", "request", "create", "--authorization", auth_id, "--analyst",
                   "alice", "--dataset", "residents", "--columns", "education", "--reason",
                   "school planning").stdout.strip()
    assert shuyu.json("authority", "request", "list", "--status", "pending")[0]["id"] == req_id
    shuyu("authority", "request", "approve", req_id, "--reason", "in scenario")
    shuyu("authority", "check", "alice", "residents", "--columns", "education")

    shuyu("authority", "authorization", "suspend", auth_id, "--reason", "audit",
          "--role", "regulator", actor="audit.office")
    shuyu("authority", "check", "alice", "residents", code=3)
    refused = shuyu("authority", "authorization", "resume", auth_id, "--reason", "x", code=1)
    assert "only a regulator may resume it" in refused.stderr
    shuyu("authority", "authorization", "resume", auth_id, "--reason", "closed", "--role",
          "regulator", actor="audit.office")
    later = (today + timedelta(days=700)).isoformat()
    assert f"now ends at {later}" in shuyu("authority", "authorization", "extend", auth_id,
                                           "--end", later, "--reason", "renewed").stdout
    shuyu("authority", "authorization", "scope", auth_id, "--remove", "contributions",
          "--reason", "no longer needed")
    assert "expired: 0" in shuyu("authority", "authorization", "expire").stdout
    shuyu("authority", "authorization", "revoke", auth_id, "--reason", "project ended")
    assert shuyu.json("authority", "authorization", "show", auth_id)["status"] == "revoked"

    types = shuyu.ledger_types()
    assert types.count("dataset.registered") == 6
    for kind in ("operator.created", "operator.updated", "analyst.added",
                 "authorization.created", "data_request.created", "data_request.approved",
                 "authorization.suspended", "authorization.resumed", "authorization.extended",
                 "authorization.scope_changed", "authorization.revoked",
                 "dataset.consent_recorded", "catalog.action_refused"):
        assert kind in types, kind


def test_request_refusal_and_withdrawal_through_the_cli(shuyu: Shuyu, tmp_path: Path) -> None:
    shuyu("authority", "import-catalog", str(write_catalog(tmp_path / "c.json", catalog_json())))
    shuyu("authority", "operator", "create", "云数科技")
    shuyu("authority", "analyst", "add", "bob", "--operator", "云数科技")
    end = (date.today() + timedelta(days=30)).isoformat()
    auth_id = shuyu("authority", "authorization", "create", "--operator", "云数科技",
                    "--analyst", "bob", "--dataset", "enterprises", "--scenario", "产业地图",
                    "--use-class", "industry_development", "--end", end).stdout.strip()
    ask = ["authority", "request", "create", "--authorization", auth_id, "--analyst", "bob",
           "--dataset", "residents", "--columns", "district", "--reason"]
    one = shuyu(*ask, "density").stdout.strip()
    shuyu("authority", "request", "refuse", one, "--reason", "not in the scenario")
    two = shuyu(*ask, "density again").stdout.strip()
    shuyu("authority", "request", "withdraw", two, "--analyst", "bob", "--reason", "dropped")
    statuses = {r["id"]: r["status"] for r in shuyu.json("authority", "request", "list")}
    assert statuses == {one: "refused", two: "withdrawn"}
    refused = shuyu("authority", "request", "approve", one, "--reason", "x", code=1)
    assert f"data request {one} is refused and cannot become approved" in refused.stderr


def test_cli_refuses_without_an_initialized_ledger(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["authority", "operator", "create", "X", "--data-dir",
                                      str(tmp_path / "empty")])
    assert result.exit_code == 1
    assert "cannot open the catalog" in result.stderr and "ledger init" in result.stderr


def test_bad_dates_and_catalog_files_are_one_line_errors(shuyu: Shuyu, tmp_path: Path) -> None:
    bad = shuyu("authority", "import-catalog", str(tmp_path / "missing.json"), code=1)
    assert bad.stderr.startswith("error: cannot read catalog")
    shuyu("authority", "operator", "create", "云数科技")
    shuyu("authority", "analyst", "add", "bob", "--operator", "云数科技")
    shuyu("authority", "import-catalog", str(write_catalog(tmp_path / "c.json", catalog_json())))
    bad = shuyu("authority", "authorization", "create", "--operator", "云数科技", "--analyst",
                "bob", "--dataset", "enterprises", "--scenario", "s", "--use-class", "公益",
                "--end", "2027-02-30", code=1)
    assert bad.stderr == "error: end '2027-02-30' is not a real date\n"
    bad = shuyu("authority", "authorization", "create", "--operator", "云数科技", "--analyst",
                "bob", "--dataset", "enterprises", "--scenario", "s", "--use-class", "公益",
                "--end", "2027-01-01T00:00:00", code=1)
    assert "has no time zone" in bad.stderr


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run([*SHUYU, *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done


@pytest.mark.slow
def test_importing_what_shuyu_data_generate_wrote(tmp_path: Path) -> None:
    run("data", "generate", "--scale", "300", "--seed", "7", "--out", "gen", cwd=tmp_path)
    run("ledger", "init", "--data-dir", "var", cwd=tmp_path)
    first = run("authority", "import-catalog", "gen/catalog.json", "--data-dir", "var", "--json",
                cwd=tmp_path)
    summary = json.loads(first.stdout)
    assert len(summary["registered"]) == 8 and "residents" in summary["registered"]
    again = run("authority", "import-catalog", "gen/catalog.json", "--data-dir", "var", "--json",
                cwd=tmp_path)
    assert json.loads(again.stdout)["unchanged"] == summary["registered"]
    shown = json.loads(run("authority", "dataset", "show", "residents", "--data-dir", "var",
                           "--json", cwd=tmp_path).stdout)
    assert shown["grade"] == "important" and shown["title"] == "户籍人口基础信息"
    resident_id = next(c for c in shown["columns"] if c["name"] == "resident_id")
    assert resident_id["identifier_class"] == "direct_identifier"
    assert resident_id["label"] == "公民身份号码" and not resident_id["group_by_allowed"]
    assert shown["registration_code"] and shown["acquired_on"] and shown["version"]
    run("authority", "operator", "create", "云数科技", "--data-dir", "var", cwd=tmp_path)
    run("authority", "analyst", "add", "alice", "--operator", "云数科技", "--data-dir", "var",
        cwd=tmp_path)
    closed = subprocess.run(
        [*SHUYU, "authority", "authorization", "create", "--operator", "云数科技", "--analyst",
         "alice", "--dataset", "bus_cards", "--scenario", "s", "--use-class", "公益", "--end",
         (date.today() + timedelta(days=10)).isoformat(), "--data-dir", "var"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert closed.returncode == 1
    assert "error: dataset 'bus_cards' is 不予开放 (not open)" in closed.stderr
