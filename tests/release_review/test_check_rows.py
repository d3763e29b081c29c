"""Row-level checks against the raw data on the server: "catalog_identifiers", "raw_overlap",
"reidentification"."""

from __future__ import annotations

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from hub.gateway.pseudonyms import pseudonym
from release_review.checks import (
    catalog_identifiers, columns, overlap, registry, reidentification, sourcematch,
)
from release_review.checks.base import Verdict
from release_review.checks.tables import load_table
from tests.release_review.conftest import only


def common_rows(table: pa.Table, keys: list[str], at_least: int) -> pa.Table:
    """The rows whose combination of `keys` occurs at least `at_least` times in `table`."""
    frame = pl.from_arrow(table)
    frame = frame.filter(pl.len().over(keys) >= at_least)
    return frame.to_arrow()


# --- catalog_identifiers ----------------------------------------------------------------


def test_names_and_household_numbers_from_the_raw_data_fail(sub):
    people = sub.raw("residents").select(["name", "household_id", "sex"]).rename_columns(
        ["who", "hh", "sex"])  # renamed: found by value, not by name
    r = only(catalog_identifiers.run(sub.context(sub.csv("people.csv", people))))
    assert r.verdict is Verdict.FAIL, r
    found = {(f["column"], f["matches"]) for f in r.evidence["found_in_raw_data"]}
    assert ("who", "residents.name") in found and ("hh", "residents.household_id") in found
    shown = str(r.evidence)
    assert not any(v in shown for v in people["hh"].to_pylist()[:100])


def test_mobile_numbers_as_integers_are_looked_up(sub):
    mobiles = sub.raw("residents")["mobile"].drop_null().slice(0, 200)
    table = pa.table({"tel": pc.cast(mobiles, pa.int64()), "x": range(200)})
    r = only(catalog_identifiers.run(sub.context(sub.csv("tel.csv", table))))
    assert r.verdict is Verdict.FAIL
    assert r.evidence["found_in_raw_data"][0]["matches"] == "residents.mobile"


def test_pseudonymised_identifier_column_is_reviewed(sub):
    ids = sub.raw("residents")["resident_id"].to_pylist()[:100]
    table = pa.table({"resident_id": [pseudonym(b"k" * 32, i) for i in ids], "n": range(100)})
    r = only(catalog_identifiers.run(sub.context(sub.csv("ps.csv", table))))
    assert r.verdict is Verdict.REVIEW
    assert r.evidence["named_like_identifiers"] == ["resident_id"]


def test_aggregate_without_identifiers_passes(sub):
    table = sub.sql("SELECT district, education, count(*) AS n FROM residents GROUP BY ALL")
    r = only(catalog_identifiers.run(sub.context(sub.csv("agg.csv", table))))
    assert r.verdict is Verdict.PASS


# --- raw_overlap ------------------------------------------------------------------------


def test_extract_of_records_fails(sub):
    firms = sub.raw("enterprises").select(
        ["legal_form", "industry", "district", "founded_date", "registered_capital", "employees"])
    r = only(overlap.run(sub.context(sub.csv("firms.csv", firms))))
    assert r.verdict is Verdict.FAIL, r
    p = r.evidence["projections"][0]
    assert p["dataset"] == "enterprises" and p["rows_rarer_than_k"] == firms.num_rows


def test_single_record_among_made_up_rows_fails(sub):
    firm = sub.raw("enterprises").slice(0, 1).select(["district", "registered_capital"])
    made_up = pa.table({"district": ["五华区"] * 20,
                        "registered_capital": [float(10_000_000 + i) for i in range(20)]})
    table = pa.concat_tables([made_up, firm.cast(made_up.schema)])
    r = only(overlap.run(sub.context(sub.parquet("mix.parquet", table))))
    assert r.verdict is Verdict.FAIL
    assert r.evidence["projections"][0]["rows_rarer_than_k"] == 1


def test_extract_of_common_values_is_reviewed(sub):
    water = sub.raw("water_use").select(["district", "month", "usage_m3"])
    common = common_rows(water, ["district", "month", "usage_m3"], 10)
    assert common.num_rows > 100
    r = only(overlap.run(sub.context(sub.parquet("water.parquet", common))))
    assert r.verdict is Verdict.REVIEW, r


def test_coarse_columns_pass(sub):
    table = sub.raw("residents").select(["sex", "birth_year", "district"])
    r = only(overlap.run(sub.context(sub.csv("coarse.csv", table))))
    assert r.verdict is Verdict.PASS


def test_made_up_amounts_pass(sub):
    table = pa.table({"district": ["五华区", "盘龙区"], "registered_capital": [123456.78, 98765.43]})
    r = only(overlap.run(sub.context(sub.csv("made_up.csv", table))))
    assert r.verdict is Verdict.PASS


# --- reidentification -------------------------------------------------------------------


def test_unique_combinations_in_the_population_fail(sub):
    people = sub.raw("residents").select(["sex", "birth_date", "ethnicity", "district"])
    r = only(reidentification.run(sub.context(sub.csv("people.csv", people))))
    assert r.verdict is Verdict.FAIL, r
    e = r.evidence
    assert e["k_anonymity_population"] == 1 and e["prosecutor_risk_population"]["max"] == 1.0
    assert e["population_datasets"] == ["residents"]
    assert len(e["riskiest_rows"]) == 10
    assert all(row["population_alike"] == 1 for row in e["riskiest_rows"])


def test_rare_ethnic_group_in_a_small_sample_fails(sub):
    people = sub.raw("residents")
    counts = pl.from_arrow(people.select(["ethnicity"])).group_by("ethnicity").len()
    rare = counts.filter(pl.col("len") < 10)["ethnicity"].to_list()
    assert rare, "the generator makes some ethnic groups very rare"
    sample = pl.from_arrow(people.select(["sex", "ethnicity"])).filter(
        pl.col("ethnicity").is_in(rare)).head(3).to_arrow()
    r = only(reidentification.run(sub.context(sub.csv("rare.csv", sample))))
    assert r.verdict is Verdict.FAIL


def test_common_combinations_pass(sub):
    people = sub.raw("residents").select(["sex", "education", "marital_status"])
    safe = common_rows(people, ["sex", "education", "marital_status"], 10)
    r = only(reidentification.run(sub.context(sub.csv("safe.csv", safe))))
    assert r.verdict is Verdict.PASS, r
    assert r.evidence["k_anonymity_population"] >= 10


def test_small_output_classes_of_a_large_population_are_reviewed(sub):
    people = sub.raw("residents").select(["sex", "education"])
    safe = common_rows(people, ["sex", "education"], 10)
    sample = pl.from_arrow(safe).unique(subset=["sex", "education"]).to_arrow()
    r = only(reidentification.run(sub.context(sub.csv("sample.csv", sample))))
    assert r.verdict is Verdict.REVIEW
    assert r.evidence["k_anonymity_table"] == 1 and r.evidence["k_anonymity_population"] >= 10


def test_homogeneous_sensitive_attribute_is_reviewed(sub):
    firms = sub.raw("enterprises").select(["legal_form"])
    common = common_rows(firms, ["legal_form"], 10)
    table = common.append_column("employees", pa.array([5] * common.num_rows, pa.int64()))
    r = only(reidentification.run(sub.context(sub.csv("firms.csv", table))))
    assert r.verdict is Verdict.REVIEW, r
    assert r.evidence["l_diversity"] == {"employees": 1}


def test_aggregate_tables_are_left_to_the_cell_checks(sub):
    q = "SELECT sex, ethnicity, count(*) AS n FROM residents GROUP BY ALL"
    r = only(reidentification.run(sub.context(sub.csv("agg.csv", sub.sql(q)), queries=[q])))
    assert r.verdict is Verdict.PASS and r.artifact is None


# --- one join for both row-level checks ---------------------------------------------------


class CountingReader:
    """The real read-only connection, counting the statements that join a dataset."""

    def __init__(self, con, dataset: str):
        self.con, self.needle, self.joins = con, f'JOIN main."{dataset}"', 0

    def sql(self, query, params=None):
        self.joins += self.needle in query
        return self.con.sql(query, params=params) if params else self.con.sql(query)

    def register(self, name, obj):
        return self.con.register(name, obj)

    def unregister(self, name):
        return self.con.unregister(name)

    def close(self):
        self.con.close()


def test_overlap_and_reidentification_share_one_join(sub):
    people = sub.raw("residents").select(["sex", "birth_date", "ethnicity", "district"])
    path = sub.csv("people.csv", people)
    readers = []

    def counting():
        readers.append(CountingReader(sub.context(path).domain(), "residents"))
        return readers[-1]

    shared = sub.context(path)
    shared.domain = counting
    together = registry.run_all(shared, ((overlap.CHECK, overlap.run),
                                         (reidentification.CHECK, reidentification.run)))
    assert sum(r.joins for r in readers) == 1
    apart = [only(overlap.run(sub.context(path))), only(reidentification.run(sub.context(path)))]
    assert [(r.verdict, r.evidence) for r in together] == [(r.verdict, r.evidence) for r in apart]
    assert together[0].verdict is Verdict.FAIL and together[1].verdict is Verdict.FAIL


def test_overlap_counts_rows_and_reidentification_people(sub):
    # bus trips: many rows per card, so rows and people differ for the same combination
    trips = sub.raw("bus_trips").select(["card_type", "stop_name"])
    path = sub.parquet("trips.parquet", trips)
    ctx = sub.context(path)
    mapped = [m for m in columns.map_columns(ctx, trips.column_names)
              if m.dataset == "bus_trips"]
    counts = sourcematch.source_counts(ctx, load_table(ctx, ctx.artifacts[0]), "bus_trips",
                                       mapped)
    frame = pl.from_arrow(sub.raw("bus_trips").select(["card_type", "stop_name", "card_id"]))
    frame = frame.with_columns(pl.col("card_type", "stop_name").cast(pl.String))
    expected = frame.group_by(["card_type", "stop_name"]).agg(
        pl.len().alias("rows"), pl.col("card_id").n_unique().alias("people"))
    got = pl.DataFrame({"card_type": trips["card_type"].to_pylist(),
                        "stop_name": trips["stop_name"].to_pylist(),
                        "rows": counts.rows, "people": counts.entities}).unique()
    joined = got.join(expected, on=["card_type", "stop_name"], suffix="_raw")
    assert joined.height == got.height
    assert (joined["rows"] == joined["rows_raw"]).all()
    assert (joined["people"] == joined["people_raw"]).all()
    assert (joined["people"] < joined["rows"]).any()
