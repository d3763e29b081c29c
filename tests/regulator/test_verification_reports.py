"""The verification page (signature, cosignatures, consistency with what the browser saw, the
regulator's witness), the activity plots and the annual disclosure report."""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET

from ledger.console.verification import SEEN_COOKIE, Seen
from ledger.log import Log
from ledger.witness import Witness
from ledger.witness_pull import cosign_from_log
from tests.regulator.support import DAYS, operator_name


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', html).group(1)


def _remember(client, seen: Seen) -> None:
    """Make the browser remember `seen` as the last checkpoint it saw."""
    client.cookies.delete(SEEN_COOKIE)
    client.cookies.set(SEEN_COOKIE, seen.to_cookie())


def _append(history, n: int = 3) -> None:
    log = Log.open(history.config)
    try:
        log.append_many([{"type": "test.marker", "actor": "tester", "details": {"i": i}}
                         for i in range(n)])
    finally:
        log.close()


def test_first_visit_then_consistent_then_unchanged(client, history) -> None:
    client.cookies.delete(SEEN_COOKIE)
    first = client.get("/console/verification", params={"lang": "en"})
    assert first.status_code == 200
    assert 'class="panel ok big" id="verify-status"' in first.text
    assert "First visit" in first.text
    seen = Seen.from_cookie(first.cookies.get(SEEN_COOKIE))
    assert seen is not None
    _append(history)
    second = client.get("/console/verification", params={"lang": "en"})
    assert "Consistent: the new tree extends the old one" in second.text
    assert f"size {seen.size}" in second.text
    assert Seen.from_cookie(second.cookies.get(SEEN_COOKIE)).size == seen.size + 3
    third = client.get("/console/verification", params={"lang": "zh"})
    assert "树未变化" in third.text


def test_a_fork_or_rollback_against_the_browser_memory_is_red(client, history) -> None:
    page = client.get("/console/verification")
    seen = Seen.from_cookie(page.cookies.get(SEEN_COOKIE))
    forked = Seen(seen.size, bytes(32), seen.at)  # same size, another root
    _remember(client, forked)
    red = client.get("/console/verification", params={"lang": "en"})
    assert 'class="panel bad big" role="alert" id="verify-status"' in red.text
    assert "the log forked" in red.text
    assert SEEN_COOKIE not in red.cookies  # the evidence is kept, not overwritten
    _remember(client, Seen(seen.size + 1000, seen.root, seen.at))
    rolled = client.get("/console/api/verification").json()
    assert rolled["ok"] is False and rolled["consistency"] == "inconsistent"
    assert "truncated or rolled back" in rolled["consistency_message"]
    older = Seen(seen.size - 5, bytes(32), seen.at)  # an old size with a root the log never had
    _remember(client, older)
    bad = client.get("/console/api/verification").json()
    assert bad["ok"] is False and "no valid consistency proof" in bad["consistency_message"]


def test_witness_name_and_last_cosignature_are_shown(client, history, tmp_path) -> None:
    page = client.get("/console/verification", params={"lang": "en"})
    assert "No witness name set" in page.text
    assert "shuyu ledger witness cosign --witness-dir" in page.text
    assert "--url http://testserver" in page.text
    refused = client.post("/console/verification/witness",
                          data={"csrf": _csrf(page.text), "witness": "has space"},
                          params={"lang": "en"})
    assert refused.status_code == 400 and "without spaces" in refused.text
    forged = client.post("/console/verification/witness",
                         data={"csrf": "f" * 64, "witness": "ok.example/w"}, params={"lang": "en"})
    assert forged.status_code == 403
    name = "regulator.example/rita"
    saved = client.post("/console/verification/witness",
                        data={"csrf": _csrf(page.text), "witness": name},
                        follow_redirects=True, params={"lang": "en"})
    assert saved.status_code == 200 and "Witness name saved" in saved.text
    assert f"{name} has not cosigned this log yet" in saved.text
    witness = Witness.init(tmp_path / "w", name, [history.vkey])[0]
    log = Log.open(history.config)
    try:
        cp, _ = cosign_from_log(witness, log)
    finally:
        log.close()
    after = client.get("/console/verification", params={"lang": "en"})
    assert re.search(rf"{re.escape(name)} last cosigned tree size {cp.size} at \d{{4}}-", after.text)
    row = re.search(r'<table id="cosignatures">.*?</table>', after.text, re.S).group(0)
    assert name in row and "✔ valid" in row


def test_activity_plots_count_what_the_ledger_holds(client, history) -> None:
    params = {"since": DAYS[0], "until": DAYS[-1], "lang": "en"}
    data = client.get("/console/api/activity", params=params).json()
    days = data["days"]
    assert days[0] == DAYS[0] and days[-1] == DAYS[-1]
    per_day = [sum(v[i] for v in data["queries"].values()) for i in range(len(days))]
    want = [sum(n for (d, _), n in history.query_counts.items() if d == day) for day in days]
    assert per_day == want
    assert set(data["queries"]) == {operator_name()}
    assert [sum(v[i] for v in data["refused"].values()) for i in range(len(days))] == [
        history.denied_counts.get(day, 0) for day in days]
    releases = {k: sum(v) for k, v in data["releases"].items()}
    assert releases == {"release.submitted": 3, "release.approved": 1, "release.returned": 0,
                        "release.rejected": 1, "release.withdrawn": 1, "release.released": 1}
    (budget,) = data["budget"]
    assert budget["authorization"] == history.auth["agg"]
    assert budget["spent"] == 0.75 and budget["remaining"] == 1.25 and budget["charges"] == 2
    page = client.get("/console/activity", params=params)
    assert page.status_code == 200
    for key in ("queries", "refused", "releases", "budget"):
        svg = re.search(rf'<section class="panel plot" id="plot-{key}">\s*(<svg.*?</svg>)',
                        page.text, re.S).group(1)
        ET.fromstring(svg)  # well-formed
    one = client.get("/console/activity/queries.svg", params=params)
    assert one.headers["content-type"].startswith("image/svg+xml")
    bars = re.findall(r"<title>([^<]+)</title>", one.text)
    assert sum(int(b.rsplit(": ", 1)[1]) for b in bars) == sum(want)


def test_activity_period_is_validated(client) -> None:
    r = client.get("/console/activity", params={"since": "2026-13-01", "lang": "en"})
    assert r.status_code == 400 and 'id="period-errors"' in r.text
    r = client.get("/console/api/activity", params={"since": "2026-03-05", "until": "2026-03-01"})
    assert r.status_code == 400 and "start is after the end" in r.json()["detail"]


def test_disclosure_report_html_csv_json(client, history) -> None:
    year = int(DAYS[0][:4])
    js = client.get("/console/disclosure.json", params={"year": year}).json()
    (op,) = [o for o in js["operators"] if o["operator"] == operator_name()]
    auths = {a["authorization"]: a for a in op["authorizations"]}
    row = auths[history.auth["row"]]
    assert row["scenario"] == "企业用工与社保缴纳统计" and row["use_class"] == "public_governance"
    assert {d["dataset"] for d in row["datasets"]} == {"enterprises", "bus_trips", "residents",
                                                       "social_insurance"}
    assert [p["release"] for p in row["products"]] == ["rel-1"]
    assert row["products"][0]["ledger_index"] == history.released_index
    assert history.auth["late"] not in auths or auths[history.auth["late"]]["starts_at"] < f"{year + 1}"
    text = client.get("/console/disclosure.csv", params={"year": year}).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["authorization"] for r in rows} == set(auths)
    assert any("产品 rel-1" in r["products"] for r in rows)
    html = client.get("/console/disclosure", params={"year": year, "lang": "zh"})
    assert html.status_code == 200 and "年度信息披露" in html.text and "产品 rel-1" in html.text
    bad = client.get("/console/disclosure", params={"year": "1999", "lang": "en"})
    assert bad.status_code == 400 and "from 2000 to 2100" in bad.text
    for odd in ("２０２５", "2²", "٢٠٢٥"):  # digits Python's isdigit() takes, int() may not
        bad = client.get("/console/disclosure.json", params={"year": odd, "lang": "en"})
        assert bad.status_code == 400 and "from 2000 to 2100" in bad.text
    empty = client.get("/console/disclosure.json", params={"year": 2001}).json()
    assert empty["operators"] == []
    assert json.dumps(empty)  # JSON all the way down


def test_authorizations_page_links_to_the_hub_side_suspension(client, history) -> None:
    page = client.get("/console/authorizations", params={"lang": "en"})
    assert page.status_code == 200
    for auth in history.auth.values():
        assert f'id="row-{auth}"' in page.text
    assert f'href="/services/regulator/suspend?authorization={history.auth["row"]}"' in page.text
    fake = client.get("/console/authorizations", params={"suspended": history.auth["row"]})
    assert 'id="notice"' not in fake.text  # the notice shows only what the ledger says
