"""Activity plots, the annual disclosure report and the authorizations the ledger records."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from ledger.console import activity as act
from ledger.console import disclosure as disc
from ledger.console.i18n import Message, translate
from ledger.console.svgplot import horizontal_bars, stacked_bars
from ledger.service.deps import ReaderDep
from ledger.service.pages.common import HTML_RESPONSES, RegulatorDep, console_state, lang_of, render

router = APIRouter(prefix="/console", tags=["console"])
Day = Annotated[str | None, Query(max_length=40, description="UTC day, YYYY-MM-DD.")]
Year = Annotated[str | None, Query(max_length=10, description="Year, 2000–2100.")]
CSV = {200: {"content": {"text/csv": {}}, "description": "The report as CSV."}}


def _today() -> date:
    return datetime.now(timezone.utc).date()


def _figures(request: Request, reader: Any, since: str | None, until: str | None) -> dict:
    period, errors = act.parse_period(since, until, _today())
    log = reader.log
    size = reader.tree_size()
    index = console_state(request).index(log)
    index.catch_up(size)
    return {
        "period": period, "errors": errors,
        "queries": act.per_day_per_operator(index.reader, "query", period, size),
        "refused": act.per_day_per_operator(index.reader, "query.denied", period, size),
        "releases": act.releases_per_day(index.reader, period, size),
        "budget": act.budget_per_authorization(index.reader, period, size),
    }


def _svgs(figures: dict, lang: str) -> dict[str, str]:
    def t(key: str) -> str:
        return translate(key, lang)

    out = {}
    for key, title in (("queries", "activity.queries"), ("refused", "activity.refused"),
                       ("releases", "activity.releases")):
        daily = figures[key]
        series = {n: v for n, v in daily.series.items() if sum(v)} or daily.series
        out[key] = stacked_bars(t(title), daily.days, series, t("activity.count"))
    budget = figures["budget"]
    out["budget"] = horizontal_bars(t("activity.budget"), [b.authorization for b in budget],
                                    [b.spent for b in budget], "ε")
    return out


@router.get("/activity", responses=HTML_RESPONSES, summary="Activity plots (server-rendered SVG)")
def activity_page(request: Request, reader: ReaderDep, user: RegulatorDep, since: Day = None,
                  until: Day = None) -> Response:
    figures = _figures(request, reader, since, until)
    svgs = _svgs(figures, lang_of(request))
    return render(request, "activity.html", 400 if figures["errors"] else 200, user=user,
                  svgs=svgs, since=since or "", until=until or "", **figures)


class ActivityPublic(BaseModel):
    since: str
    until: str
    days: list[str]
    queries: dict[str, list[int]]
    refused: dict[str, list[int]]
    releases: dict[str, list[int]]
    budget: list[dict[str, Any]]


@router.get("/api/activity", response_model=ActivityPublic,
            responses={400: {"description": "Bad period."}}, summary="Activity figures (JSON)")
def activity_json(request: Request, reader: ReaderDep, user: RegulatorDep, since: Day = None,
                  until: Day = None) -> Any:
    f = _figures(request, reader, since, until)
    if f["errors"]:
        return JSONResponse({"detail": "; ".join(str(m) for m in f["errors"].values())}, 400)
    p = f["period"]
    return ActivityPublic(since=p.since.isoformat(), until=p.until.isoformat(), days=p.days,
                          queries=f["queries"].series, refused=f["refused"].series,
                          releases=f["releases"].series,
                          budget=[b.__dict__ for b in f["budget"]])


@router.get("/activity/{figure}.svg", summary="One activity plot as SVG",
            responses={200: {"content": {"image/svg+xml": {}}}, 404: HTML_RESPONSES[404]})
def activity_svg(request: Request, figure: str, reader: ReaderDep, user: RegulatorDep,
                 since: Day = None, until: Day = None) -> Response:
    if figure not in ("queries", "refused", "releases", "budget"):
        return render(request, "error.html", 404, user=user, title_key="notfound.title",
                      detail=f"no plot named {figure[:40]!r}")
    svgs = _svgs(_figures(request, reader, since, until), lang_of(request))
    return Response(svgs[figure], media_type="image/svg+xml")


def _year(raw: str | None) -> tuple[int, Message | None]:
    default = _today().year - 1 if _today().month <= 3 else _today().year
    if not raw:
        return default, None
    text = raw.strip()
    if not (text.isascii() and text.isdigit()) or not 2000 <= int(text) <= 2100:
        return default, Message("err.year", {"value": raw[:10]})
    return int(text), None


def _report(request: Request, reader: Any, year: int) -> disc.DisclosureReport:
    log = reader.log
    return disc.disclosure(log.store.reader, log.config.origin, reader.tree_size(), year)


@router.get("/disclosure", responses=HTML_RESPONSES, summary="Annual disclosure report (HTML)")
def disclosure_page(request: Request, reader: ReaderDep, user: RegulatorDep,
                    year: Year = None) -> Response:
    y, error = _year(year)
    report = _report(request, reader, y)
    return render(request, "disclosure.html", 400 if error else 200, user=user, report=report,
                  error=error, year_text=year or str(y))


def _file(request: Request, user: Any, year: str | None, kind: str) -> Response:
    y, error = _year(year)
    if error is not None:
        return render(request, "error.html", 400, user=user, title_key="error.title",
                      detail=error)
    report = _report(request, request.app.state.reader, y)
    if kind == "csv":
        return Response(disc.to_csv(report), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="disclosure-{y}.csv"'})
    return JSONResponse(report.to_json(), headers={
        "Content-Disposition": f'attachment; filename="disclosure-{y}.json"'})


@router.get("/disclosure.csv", responses={**HTML_RESPONSES, **CSV},
            summary="Annual disclosure report (CSV)")
def disclosure_csv(request: Request, user: RegulatorDep, year: Year = None) -> Response:
    return _file(request, user, year, "csv")


@router.get("/disclosure.json", responses={**HTML_RESPONSES,
                                           200: {"content": {"application/json": {}}}},
            summary="Annual disclosure report (JSON)")
def disclosure_json(request: Request, user: RegulatorDep, year: Year = None) -> Response:
    return _file(request, user, year, "json")


@router.get("/authorizations", responses=HTML_RESPONSES,
            summary="Authorizations recorded in the ledger, with the suspend action")
def authorizations_page(request: Request, reader: ReaderDep, user: RegulatorDep,
                        suspended: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    log = reader.log
    auths = disc.authorization_states(log.store.reader, reader.tree_size())
    done = any(a.authorization == suspended and a.status == "suspended" for a in auths)
    notice = Message("auth.suspended_ok", {"id": suspended}) if done else None
    return render(request, "authorizations.html", user=user, auths=auths, notice=notice)
