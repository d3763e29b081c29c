"""Synthetic public data: determinism, valid identifiers, sane distributions, linked datasets,
the catalog, and the command line refusing bad flags."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from hub.synthetic.generate import Options, prepare_out_dir, write_dataset_dir
from hub.synthetic.identifiers import (
    credit_code_check_char,
    org_code_check_char,
    resident_id_check_char,
)
from hub.synthetic.insurance import BASE_CEILING, BASE_FLOOR, MAX_MONTHLY_WAGE
from shuyu_server.cli import cli

SCALE = 20_000
SEED = 11
AS_OF = date(2025, 12, 31)
NAMES = ["households", "residents", "enterprises", "social_insurance", "bus_cards", "bus_trips",
         "water_use", "electricity_use"]

# --- independent reference implementations (written from the standards, not from hub/) ------

RID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]  # GB 11643-1999
RID_CHECK = "10X98765432"
USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100-2015: no I O S V Z
USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
ORG_WEIGHTS = [3, 7, 9, 10, 5, 8, 4, 2]  # GB 11714-1997


def rid_valid(s: str) -> bool:
    if not re.fullmatch(r"\d{17}[\dX]", s):
        return False
    return RID_CHECK[sum(int(c) * w for c, w in zip(s, RID_WEIGHTS)) % 11] == s[17]


def uscc_valid(s: str) -> bool:
    if len(s) != 18 or any(c not in USCC_CHARS for c in s):
        return False
    total = sum(USCC_CHARS.index(c) * w for c, w in zip(s, USCC_WEIGHTS))
    return USCC_CHARS[(31 - total % 31) % 31] == s[17]


def org_valid(s: str) -> bool:
    values = [int(c, 36) for c in s[:8]]
    check = 11 - sum(v * w for v, w in zip(values, ORG_WEIGHTS)) % 11
    return {10: "X", 11: "0"}.get(check, str(check)) == s[8]


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synthetic")
    write_dataset_dir(out, Options(SCALE, SEED, AS_OF))
    return out


@pytest.fixture(scope="module")
def catalog(generated: Path) -> dict:
    return json.loads((generated / "catalog.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def db(generated: Path):
    """An in-memory DuckDB with one view per generated file (test-side analysis only)."""
    con = duckdb.connect()
    for name in NAMES:
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{generated / name}.parquet')")
    yield con
    con.close()


def column(db, sql: str) -> list:
    return [r[0] for r in db.execute(sql).fetchall()]


def scalar(db, sql: str):
    return db.execute(sql).fetchone()[0]


def file_hashes(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


# --- determinism -----------------------------------------------------------------------------


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path: Path) -> None:
    runs = {}
    for label, seed in (("a", 5), ("b", 5), ("c", 6)):
        write_dataset_dir(tmp_path / label, Options(1_500, seed, AS_OF))
        runs[label] = file_hashes(tmp_path / label)
    assert runs["a"] == runs["b"]
    assert sorted(runs["a"]) == sorted([f"{n}.parquet" for n in NAMES] + ["catalog.json"])
    for name in runs["a"]:
        assert runs["a"][name] != runs["c"][name], f"{name} did not change with the seed"


def test_catalog_hashes_and_rows_match_the_files(generated: Path, catalog: dict) -> None:
    assert catalog["format"] == "shuyu-catalog/1"
    assert catalog["generator"] == {
        "command": "shuyu data generate", "scale": SCALE, "seed": SEED, "as_of": "2025-12-31"}
    assert [d["name"] for d in catalog["datasets"]] == NAMES
    for d in catalog["datasets"]:
        path = generated / d["file"]
        assert d["file"] == f"{d['name']}.parquet"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == d["sha256"]
        assert pq.ParquetFile(path).metadata.num_rows == d["rows"] > 0
        assert d["version"] == f"2025-12-31+{d['sha256'][:12]}"


# --- identifiers -------------------------------------------------------------------------------


def test_reference_examples_of_the_standards() -> None:
    assert resident_id_check_char("11010519491231002") == "X"  # GB 11643-1999's own example
    assert rid_valid("11010519491231002X")
    assert credit_code_check_char("91350100M000100Y4") == "3"  # widely published sample code
    assert uscc_valid("91350100M000100Y43")
    assert org_code_check_char("D2143569") == "X"  # GB 11714 worked example
    with pytest.raises(ValueError, match="17 digits"):
        resident_id_check_char("1101051949123100")
    with pytest.raises(ValueError, match="17 characters"):
        credit_code_check_char("91350100I000100Y4")  # I is not in the alphabet


def test_every_resident_id_is_valid_and_agrees_with_the_row(db) -> None:
    rows = db.execute("SELECT resident_id, sex, birth_date FROM residents").fetchall()
    assert len(rows) == SCALE
    ids = [r[0] for r in rows]
    assert len(set(ids)) == SCALE
    bad = [i for i in ids if not rid_valid(i)]
    assert not bad, bad[:5]
    for rid, sex, birth in rows:
        assert rid[6:14] == birth.strftime("%Y%m%d")
        assert int(rid[16]) % 2 == (1 if sex == "男" else 0)
    regions = {i[:6] for i in ids}
    assert {"530102", "530103", "530111", "530112", "530113", "530114", "530115"} <= regions
    assert "530121" in regions  # older 呈贡 residents keep the pre-2011 county code
    assert sum(i[:4] == "5301" for i in ids) / SCALE > 0.88


def test_every_credit_code_is_valid(db) -> None:
    rows = db.execute("SELECT credit_code, legal_form FROM enterprises").fetchall()
    codes = [r[0] for r in rows]
    assert len(codes) == SCALE // 20 == len(set(codes))
    assert all(uscc_valid(c) for c in codes), [c for c in codes if not uscc_valid(c)][:5]
    assert all(org_valid(c[8:17]) for c in codes)
    for code, form in rows:
        assert code[0] == "9"
        assert code[1] == {"个体工商户": "2", "农民专业合作社": "3"}.get(form, "1")
        assert code[2:6] == "5301"
    assert len(set(column(db, "SELECT name FROM enterprises"))) == len(codes)


def test_mobile_numbers_are_valid_and_children_have_none(db) -> None:
    mobiles = column(db, "SELECT mobile FROM residents WHERE mobile IS NOT NULL")
    assert len(mobiles) > SCALE * 0.6
    assert all(re.fullmatch(r"1[3-9]\d{9}", m) for m in mobiles)
    assert scalar(db, "SELECT count(mobile) FROM residents "
                      "WHERE birth_date > DATE '2025-12-31' - INTERVAL 12 YEAR") == 0


# --- distributions -----------------------------------------------------------------------


def test_ethnic_groups_have_a_majority_and_a_long_rare_tail(db) -> None:
    counts = dict(db.execute("SELECT ethnicity, count(*) FROM residents GROUP BY 1").fetchall())
    assert 0.75 < counts.pop("汉族") / SCALE < 0.92
    assert counts["彝族"] > counts["回族"] > counts["哈尼族"]
    rare = [e for e, c in counts.items() if c <= SCALE * 0.001]
    assert len(rare) >= 5, counts  # present, but a handful of people each
    assert len(counts) >= 20
    yi_share = dict(db.execute(
        "SELECT district, avg((ethnicity = '彝族')::INT) FROM residents GROUP BY 1").fetchall())
    assert yi_share["石林彝族自治县"] > 3 * yi_share["五华区"]


def test_people_look_like_a_population(db) -> None:
    male = scalar(db, "SELECT avg((sex = '男')::INT) FROM residents")
    assert 0.47 < male < 0.56
    oldest, youngest = db.execute("SELECT min(birth_date), max(birth_date) FROM residents").fetchone()
    assert oldest >= date(1920, 1, 1) and youngest <= AS_OF
    assert scalar(db, "SELECT count(*) FROM residents WHERE education = '博士研究生'") < SCALE * 0.01
    districts = dict(db.execute("SELECT district, count(*) FROM residents GROUP BY 1").fetchall())
    assert len(districts) == 14
    assert max(districts, key=districts.get) == "官渡区"
    names = column(db, "SELECT name FROM residents")
    assert all(2 <= len(n) <= 4 for n in names)
    assert 0.04 < sum(n[0] == "李" for n in names) / SCALE < 0.12
    assert scalar(db, "SELECT count(*) FROM (SELECT household_id, name FROM residents "
                      "GROUP BY ALL HAVING count(*) > 1)") == 0  # no two 李伟 in one home


def test_registered_capital_is_heavy_tailed(db) -> None:
    capital = np.sort(np.array(column(db, "SELECT registered_capital::DOUBLE FROM enterprises")))
    top1 = capital[-len(capital) // 100:].sum() / capital.sum()
    assert top1 > 0.12, top1  # a log-normal body alone would give about 0.2 at best
    assert capital.mean() > 2 * np.median(capital)
    assert (capital >= 2_000).mean() > 0.01  # the Pareto tail: 2,000 万元 and more
    assert capital[-1] > 100 * np.median(capital)
    assert (capital > 0).all()


def test_wages_are_skewed_and_bases_within_limits(db) -> None:
    mean, median, top = db.execute(
        "SELECT avg(wage), median(wage), max(wage) FROM social_insurance").fetchone()
    assert mean > median and top > 5 * median
    assert top <= MAX_MONTHLY_WAGE * 1.3 * 7  # cap, monthly noise, year-end bonus
    low, high = db.execute(
        "SELECT min(contribution_base), max(contribution_base) FROM social_insurance").fetchone()
    assert low >= BASE_FLOOR and high <= BASE_CEILING
    at_floor = scalar(db, f"SELECT avg((contribution_base = {BASE_FLOOR})::INT) FROM social_insurance")
    assert 0.2 < at_floor < 0.7
    pension = scalar(db, "SELECT max(abs(pension_employer - round(contribution_base * 0.16, 2))) "
                         "FROM social_insurance")
    assert pension <= 0.01
    months = column(db, "SELECT DISTINCT month FROM social_insurance ORDER BY 1")
    assert months[0] == date(2025, 1, 1) and months[-1] == date(2025, 12, 1) and len(months) == 12


def test_usage_has_seasons_and_trips_have_rush_hours(db) -> None:
    power = dict(db.execute(
        "SELECT month(month), avg(usage_kwh) FROM electricity_use GROUP BY 1").fetchall())
    assert power[1] > 1.2 * power[5]  # winter heating
    water = dict(db.execute("SELECT month(month), avg(usage_m3) FROM water_use GROUP BY 1").fetchall())
    assert water[4] > 1.1 * water[8]  # dry spring
    hours = dict(db.execute(
        "SELECT hour(board_time), count(*) FROM bus_trips WHERE dayofweek(board_time) BETWEEN 1 AND 5 "
        "GROUP BY 1").fetchall())
    assert hours[7] > 2 * hours[13]
    first, last = db.execute("SELECT min(board_time), max(board_time) FROM bus_trips").fetchone()
    assert first.date() == date(2025, 12, 25) and last.date() == AS_OF


# --- links between datasets -------------------------------------------------------------------


@pytest.mark.parametrize("child, key, parent, target", [
    ("residents", "household_id", "households", "household_id"),
    ("enterprises", "legal_representative_id", "residents", "resident_id"),
    ("social_insurance", "resident_id", "residents", "resident_id"),
    ("social_insurance", "credit_code", "enterprises", "credit_code"),
    ("bus_cards", "resident_id", "residents", "resident_id"),
    ("bus_trips", "card_id", "bus_cards", "card_id"),
    ("water_use", "household_id", "households", "household_id"),
    ("electricity_use", "household_id", "households", "household_id"),
])
def test_references_resolve(db, catalog, child, key, parent, target) -> None:
    declared = {(r["columns"][0], r["dataset"], r["target"][0])
                for d in catalog["datasets"] if d["name"] == child for r in d["references"]}
    assert (key, parent, target) in declared
    dangling = scalar(db, f"SELECT count(*) FROM {child} c ANTI JOIN {parent} p ON c.{key} = p.{target}")
    assert dangling == 0


def test_primary_keys_are_unique(db, catalog) -> None:
    for d in catalog["datasets"]:
        keys = ", ".join(d["primary_key"])
        dup = scalar(db, f"SELECT count(*) FROM (SELECT {keys} FROM {d['name']} "
                         f"GROUP BY ALL HAVING count(*) > 1)")
        assert dup == 0, d["name"]


def test_households_agree_with_their_members(db) -> None:
    mismatched = scalar(db, """
        SELECT count(*) FROM households h
        JOIN (SELECT household_id, count(*) AS n, count(*) FILTER (WHERE relation_to_head = '户主') AS heads,
                     any_value(address) AS address, any_value(district) AS district
              FROM residents GROUP BY 1) r USING (household_id)
        WHERE r.n <> h.household_size OR r.heads <> 1 OR r.address <> h.address
           OR r.district <> h.district""")
    assert mismatched == 0
    assert scalar(db, "SELECT count(*) FROM households") == scalar(
        db, "SELECT count(DISTINCT household_id) FROM residents")
    per_household = set(column(db, "SELECT count(*) FROM water_use GROUP BY household_id"))
    assert per_household == {12}


def test_employers_were_active_and_employees_of_working_age(db) -> None:
    assert scalar(db, """
        SELECT count(*) FROM social_insurance s JOIN enterprises e USING (credit_code)
        WHERE e.status <> '存续' OR e.founded_date >= DATE '2025-01-01'""") == 0
    assert scalar(db, """
        SELECT count(*) FROM social_insurance s JOIN residents r USING (resident_id)
        WHERE r.birth_date > DATE '2025-12-31' - INTERVAL 18 YEAR
           OR r.birth_date < DATE '2025-12-31' - INTERVAL 61 YEAR""") == 0
    # a big employer holds many employees, most hold few
    sizes = np.array(column(db, "SELECT count(DISTINCT resident_id) FROM social_insurance GROUP BY credit_code"))
    assert sizes.max() > 10 * np.median(sizes)


def test_card_types_follow_age_and_fares_follow_card_types(db) -> None:
    assert scalar(db, """
        SELECT count(*) FROM bus_cards c JOIN residents r USING (resident_id)
        WHERE c.card_type = '老年卡' AND r.birth_date > DATE '2025-12-31' - INTERVAL 65 YEAR""") == 0
    assert scalar(db, "SELECT max(fare) FROM bus_trips WHERE card_type IN ('老年卡', '爱心卡')") == 0


# --- catalog ------------------------------------------------------------------------------


def test_catalog_describes_every_column_with_its_real_type(generated, catalog) -> None:
    classes = {"direct_identifier", "quasi_identifier", "sensitive", "other"}
    con = duckdb.connect()
    for d in catalog["datasets"]:
        assert d["grade"] in {"核心", "重要", "一般"}
        assert d["open_attribute"] in {"无条件", "有条件", "不予开放"}
        assert d["title"]["zh"] and d["title"]["en"] and d["description"] and d["provider"]
        assert d["update_frequency"] in {"daily", "monthly"}
        assert d["acquired_on"] == "2025-12-31"
        assert re.fullmatch(r"530100-GS-2025-\d{4}", d["registration_code"])
        described = con.execute(
            f"DESCRIBE SELECT * FROM read_parquet('{generated / d['file']}')").fetchall()
        assert [(c["name"], c["type"]) for c in d["columns"]] == [(r[0], r[1]) for r in described]
        for c in d["columns"]:
            assert c["identifier_class"] in classes and c["label"] and c["description"]
            if c["identifier_class"] == "direct_identifier":
                assert not c["group_by_allowed"], (d["name"], c["name"])
    con.close()
    grades = {d["name"]: (d["grade"], d["open_attribute"]) for d in catalog["datasets"]}
    assert grades["residents"] == ("重要", "有条件")
    assert grades["enterprises"] == ("一般", "无条件")
    assert grades["bus_cards"][1] == "不予开放"
    assert {p["name"] for p in catalog["providers"]} == {d["provider"] for d in catalog["datasets"]}


# --- command line -------------------------------------------------------------------------------


def run(*args: str):
    return CliRunner().invoke(cli, ["data", "generate", *args])


@pytest.mark.parametrize("args, message", [
    (["--scale", "-5"], "--scale must be a number of residents from 100"),
    (["--scale", "0"], "got 0"),
    (["--scale", "99"], "got 99"),
    (["--scale", "10000001"], "got 10,000,001"),
    (["--scale", "ten"], "'ten' is not a valid integer"),
    (["--seed", "-1"], "--seed must be a non-negative integer"),
    (["--as-of", "2025-02-30"], "is not a date like 2025-12-31"),
    (["--force"], "--force applies to --out"),
])
def test_bad_flags_are_refused_with_a_reason(tmp_path: Path, args, message) -> None:
    result = run("--data-dir", str(tmp_path / "var"), *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "var").exists()


def test_out_must_be_a_writable_empty_directory(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("keep me")
    result = run("--scale", "200", "--out", str(a_file))
    assert result.exit_code == 2 and "exists and is not a directory" in result.output
    result = run("--scale", "200", "--out", str(a_file / "sub"))  # parent is a file
    assert result.exit_code == 2 and "cannot write to --out" in result.output
    assert a_file.read_text() == "keep me"

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    result = run("--scale", "200", "--out", str(busy))
    assert result.exit_code == 2 and "is not empty; pass --force" in result.output
    assert [p.name for p in busy.iterdir()] == ["notes.txt"]

    result = run("--scale", "200", "--out", str(busy), "--replace")
    assert result.exit_code == 2 and "--replace applies to the domain store" in result.output

    result = run("--scale", "200", "--out", str(busy), "--force")
    assert result.exit_code == 0, result.output
    assert (busy / "notes.txt").read_text() == "mine"  # --force replaces only dataset files
    assert (busy / "catalog.json").is_file() and (busy / "residents.parquet").is_file()


def test_prepare_out_dir_creates_missing_directories(tmp_path: Path) -> None:
    prepare_out_dir(tmp_path / "a" / "b", force=False)
    assert (tmp_path / "a" / "b").is_dir() and not any((tmp_path / "a" / "b").iterdir())


def test_credit_codes_stay_unique_when_collisions_are_certain() -> None:
    """600k entities founded before 2015 draw from 90M digit bodies: ~2,000 collide at first."""
    from hub.synthetic.enterprises import _credit_codes

    m = 600_000
    rng = np.random.default_rng(1)
    codes = _credit_codes(rng, np.zeros(m, dtype=np.int64), np.zeros(m, dtype=np.int64),
                          np.full(m, np.datetime64("2001-01-01")))
    values = codes.to_numpy(zero_copy_only=False)
    assert len(set(values)) == m
    assert all(uscc_valid(c) for c in values[:1000])


def test_enterprise_names_stay_unique_in_a_crowded_register() -> None:
    """300k retail companies in one district: far more than two-character trade names allow."""
    from hub.synthetic.enterprises import _names

    m = 300_000
    zeros = np.zeros(m, dtype=np.int64)
    retail = np.full(m, 5)  # section F
    names = _names(np.random.default_rng(2), zeros, zeros, retail, zeros).to_numpy(
        zero_copy_only=False)
    assert len(set(names)) == m
    assert all(n.endswith("有限公司") for n in names[:100])


def test_an_early_reference_date_keeps_every_date_in_the_past(tmp_path: Path) -> None:
    as_of = date(2004, 6, 30)
    write_dataset_dir(tmp_path, Options(2_000, 1, as_of))
    con = duckdb.connect()
    checks = {
        "residents": "max(birth_date)", "enterprises": "max(founded_date)",
        "bus_cards": "max(issued_date)", "bus_trips": "max(board_time)::DATE",
        "social_insurance": "max(month)", "water_use": "max(month)",
    }
    for name, expr in checks.items():
        latest = con.execute(f"SELECT {expr} FROM read_parquet('{tmp_path / name}.parquet')").fetchone()[0]
        assert latest <= as_of, name
    first_month = con.execute(
        f"SELECT min(month) FROM read_parquet('{tmp_path}/electricity_use.parquet')").fetchone()[0]
    assert first_month == date(2003, 7, 1)
    codes = con.execute(
        f"SELECT credit_code FROM read_parquet('{tmp_path}/enterprises.parquet')").fetchall()
    assert all(uscc_valid(c) and c[8:10] != "MA" for (c,) in codes)  # MA codes began in 2015
