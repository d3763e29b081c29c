"""`shuyu authority …`: the data authority's command line for the catalog and authorizations.

Verbs: import-catalog; dataset list|show|consent; operator create|list|officer;
analyst add|list; authorization create|list|show|suspend|resume|revoke|extend|scope|analysts|
expire; request create|list|approve|refuse|withdraw; check; states. Every change is written to
the ledger before it takes effect, so the ledger must be initialized (`shuyu ledger init`).

The acting person is ``--actor`` (default ``$SHUYU_ACTOR``, else the login name); commands act
in the authority role unless they say otherwise (``suspend --role regulator``; ``request
create`` acts as the analyst). Dates: ``YYYY-MM-DD`` is a day in China Standard Time (a start
is its beginning, an end its end), or give an ISO 8601 time with a zone. Errors go to stderr as
one line: exit status 1 for a refused or failed change, 3 for a refused query check.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from hub.catalog.agreements import ScopeRequest
from hub.catalog.enums import Role
from hub.catalog.events import Actor, format_time
from hub.catalog.exceptions import CatalogError, InvalidInput, QueryNotAuthorized
from hub.catalog.service import OpenedCatalog, open_catalog
from hub.catalog.states import AuthorizationStatus, DataRequestStatus
from hub.catalog.validation import parse_time
from ledger.exceptions import LedgerError
from shuyu_server.settings import load_settings

data_dir_option = click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Data directory (default: settings, else ./var).",
)
actor_option = click.option(
    "--actor", envvar="SHUYU_ACTOR", default=None,
    help="Who is acting (default: $SHUYU_ACTOR, else the login name).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
reason_option = click.option("--reason", required=True, help="Why (recorded in the ledger).")


def fail(message: str, code: int = 1) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@contextmanager
def catalog(data_dir: Path | None) -> Iterator[OpenedCatalog]:
    """The service over this data directory; errors become one line on stderr."""
    try:
        service = open_catalog(load_settings(data_dir=data_dir))
    except (LedgerError, OSError, ValueError) as e:
        fail(f"cannot open the catalog: {e}")
    try:
        yield service
    except QueryNotAuthorized as e:
        fail(f"refused: {e}", 3)
    except (CatalogError, LedgerError) as e:
        fail(str(e))
    finally:
        service.close()


def acting(name: str | None, role: Role = Role.AUTHORITY) -> Actor:
    return Actor(name or getpass.getuser(), role, f"cli@{os.uname().nodename}")


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2))


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    table = Table(title=title, show_lines=False)
    for h in headers:
        table.add_column(h)
    for row in rows:
        table.add_row(*["" if c is None else str(c) for c in row])
    Console(width=200).print(table)


def pairs(values: Sequence[str], what: str, convert: Callable[[str], Any]) -> dict[str, Any]:
    """Options given as DATASET=VALUE."""
    out: dict[str, Any] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise InvalidInput(f"{what} must look like DATASET=VALUE, got {item!r}")
        out[name.strip()] = convert(value.strip())
    return out


def scope_requests(specs: Sequence[str], modes: Sequence[str], epsilons: Sequence[str]
                   ) -> list[ScopeRequest]:
    """--dataset NAME[:col,col] with --mode NAME=MODE and --epsilon NAME=EPS."""
    mode_of = pairs(modes, "--mode", lambda s: s)
    eps_of = pairs(epsilons, "--epsilon", _number)
    out = []
    for spec in specs:
        name, _, cols = spec.partition(":")
        columns = tuple(c.strip() for c in cols.split(",") if c.strip()) if cols else None
        out.append(ScopeRequest(name.strip(), columns, mode_of.pop(name.strip(), None),
                                eps_of.pop(name.strip(), None)))
    stray = sorted(set(mode_of) | set(eps_of))
    if stray:
        raise InvalidInput(f"--mode/--epsilon name dataset(s) not given with --dataset: "
                           f"{', '.join(stray)}")
    return out


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InvalidInput(f"{text!r} is not a number") from None


@click.group()
def authority() -> None:
    """The data authority: catalog, operators, authorizations and data requests."""


# --- catalog ------------------------------------------------------------------------------


@authority.command("import-catalog")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path), required=False)
@data_dir_option
@actor_option
@json_option
def import_catalog_cmd(path: Path | None, data_dir: Path | None, actor: str | None,
                       as_json: bool) -> None:
    """Register or update every dataset of a catalog.json (as `shuyu data generate` writes).

    PATH defaults to the catalog.json that `shuyu data load` keeps in the domain directory.
    """
    from hub.catalog.importer import import_catalog, load_catalog_file

    with catalog(data_dir) as svc:
        specs = load_catalog_file(path or load_settings(data_dir=data_dir).domain_dir
                                  / "catalog.json")
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
        with Progress(*columns, console=Console(stderr=True), transient=as_json) as bar:
            task = bar.add_task("importing datasets", total=len(specs))
            summary = import_catalog(svc, acting(actor), specs,
                                     lambda spec, outcome: bar.advance(task))
        if as_json:
            emit_json(summary.to_json())
            return
        for outcome in ("registered", "updated", "unchanged"):
            names = getattr(summary, outcome)
            click.echo(f"{outcome}: {len(names)}" + (f" ({', '.join(names)})" if names else ""))


@authority.group()
def dataset() -> None:
    """Datasets in the catalog."""


@dataset.command("list")
@data_dir_option
@json_option
def dataset_list(data_dir: Path | None, as_json: bool) -> None:
    """List datasets with grade, open attribute, provider, version and registration code."""
    with catalog(data_dir) as svc:
        found = svc.list_datasets()
        if as_json:
            return emit_json([d.to_json() for d in found])
        print_table("datasets", ["name", "title", "grade", "open", "provider", "version",
                                 "acquired", "registration code", "columns"],
                    [(d.name, d.title, d.grade.label, d.open_attribute.label, d.provider,
                      d.version, d.acquired_on, d.registration_code, len(d.columns))
                     for d in found])


@dataset.command("show")
@click.argument("name")
@data_dir_option
@json_option
def dataset_show(name: str, data_dir: Path | None, as_json: bool) -> None:
    """Show one dataset and its columns."""
    with catalog(data_dir) as svc:
        ds = svc.get_dataset(name)
        if as_json:
            return emit_json(ds.to_json())
        for key, value in ds.metadata_json().items():
            click.echo(f"{key}: {'' if value is None else value}")
        print_table(f"columns of {name}", ["name", "type", "class", "group by", "description"],
                    [(c.name, c.type, c.identifier_class.label, "yes" if c.group_by_allowed
                      else "no", c.description) for c in ds.columns])


@dataset.command("consent")
@click.argument("name")
@click.option("--reference", required=True, help="Document number or link of the consent.")
@data_dir_option
@actor_option
def dataset_consent(name: str, reference: str, data_dir: Path | None, actor: str | None) -> None:
    """Record the providing unit's consent for data received through 政务数据共享."""
    with catalog(data_dir) as svc:
        ds = svc.record_consent(acting(actor), name, reference)
        click.echo(f"consent recorded for {ds.name}: {ds.consent_reference}")


# --- operators and analysts ------------------------------------------------------------------


@authority.group()
def operator() -> None:
    """Operators (运营机构)."""


@operator.command("create")
@click.argument("name")
@click.option("--credit-code", default=None, help="Unified social credit code (18 characters).")
@click.option("--security-officer", default=None,
              help="Named 数据安全负责人 (required before the operator may receive 重要 data).")
@data_dir_option
@actor_option
def operator_create(name: str, credit_code: str | None, security_officer: str | None,
                    data_dir: Path | None, actor: str | None) -> None:
    """Create an operator."""
    with catalog(data_dir) as svc:
        op = svc.create_operator(acting(actor), name, credit_code, security_officer)
        click.echo(f"operator {op.name} created")


@operator.command("officer")
@click.argument("name")
@click.argument("officer")
@data_dir_option
@actor_option
def operator_officer(name: str, officer: str, data_dir: Path | None, actor: str | None) -> None:
    """Name the operator's 数据安全负责人 (security officer)."""
    with catalog(data_dir) as svc:
        op = svc.set_security_officer(acting(actor), name, officer)
        click.echo(f"operator {op.name}: security officer {op.security_officer}")


@operator.command("list")
@data_dir_option
@json_option
def operator_list(data_dir: Path | None, as_json: bool) -> None:
    """List operators."""
    with catalog(data_dir) as svc:
        found = svc.list_operators()
        if as_json:
            return emit_json([o.to_json() for o in found])
        print_table("operators", ["name", "credit code", "security officer", "created"],
                    [(o.name, o.credit_code, o.security_officer, format_time(o.created_at))
                     for o in found])


@authority.group()
def analyst() -> None:
    """Analysts of operators (their JupyterHub user names)."""


@analyst.command("add")
@click.argument("user_name")
@click.option("--operator", "operator_name", required=True, help="Operator the analyst works for.")
@click.option("--display-name", default="", help="Full name, for people reading the ledger.")
@data_dir_option
@actor_option
def analyst_add(user_name: str, operator_name: str, display_name: str, data_dir: Path | None,
                actor: str | None) -> None:
    """Add an analyst (USER_NAME is the JupyterHub user name)."""
    with catalog(data_dir) as svc:
        an = svc.add_analyst(acting(actor), user_name, operator_name, display_name)
        click.echo(f"analyst {an.user_name} added to {an.operator}")


@analyst.command("list")
@click.option("--operator", "operator_name", default=None, help="Only this operator's analysts.")
@data_dir_option
@json_option
def analyst_list(operator_name: str | None, data_dir: Path | None, as_json: bool) -> None:
    """List analysts."""
    with catalog(data_dir) as svc:
        found = svc.list_analysts(operator_name)
        if as_json:
            return emit_json([a.to_json() for a in found])
        print_table("analysts", ["user name", "operator", "display name", "created"],
                    [(a.user_name, a.operator, a.display_name, format_time(a.created_at))
                     for a in found])


# --- authorizations ---------------------------------------------------------------------------


@authority.group()
def authorization() -> None:
    """Authorization agreements (授权运营协议)."""


def show_authorization(auth: Any, at: Any) -> None:
    data = auth.to_json(at)
    for key in ("id", "status", "effective_status", "status_reason", "operator", "scenario",
                "use_class_label", "min_group_size", "starts_at", "ends_at", "created_by"):
        click.echo(f"{key}: {data.get(key)}")
    click.echo(f"analysts: {', '.join(data['analysts'])}")
    print_table(f"scope of {auth.id}", ["dataset", "access mode", "epsilon", "columns"],
                [(s["dataset"], s["access_mode"], s["epsilon"], ", ".join(s["columns"]))
                 for s in data["scope"]])


@authorization.command("create")
@click.option("--operator", "operator_name", required=True, help="The operator (运营机构).")
@click.option("--analyst", "analysts", multiple=True, required=True,
              help="An analyst of the operator (repeat for several).")
@click.option("--dataset", "datasets", multiple=True, required=True,
              help="NAME or NAME:col1,col2 (repeat for several; no columns = every column).")
@click.option("--mode", "modes", multiple=True,
              help="NAME=row_level|aggregate_only (default aggregate_only).")
@click.option("--epsilon", "epsilons", multiple=True,
              help="NAME=EPSILON privacy budget for the dataset (default 1.0).")
@click.option("--scenario", required=True, help="The application scenario (应用场景).")
@click.option("--use-class", required=True,
              help="public_governance (公共治理/公益) or industry_development (产业发展).")
@click.option("--start", default=None, help="Start date or time (default: now).")
@click.option("--end", required=True, help="End date or time (at most 5 years after the start).")
@click.option("--min-group-size", type=int, default=10, show_default=True,
              help="Smallest group an aggregate result may show.")
@data_dir_option
@actor_option
@json_option
def authorization_create(operator_name: str, analysts: tuple[str, ...],
                         datasets: tuple[str, ...], modes: tuple[str, ...],
                         epsilons: tuple[str, ...], scenario: str, use_class: str,
                         start: str | None, end: str, min_group_size: int,
                         data_dir: Path | None, actor: str | None, as_json: bool) -> None:
    """Create an authorization agreement for an operator and its analysts."""
    with catalog(data_dir) as svc:
        auth = svc.create_authorization(
            acting(actor), operator=operator_name, analysts=analysts,
            scope=scope_requests(datasets, modes, epsilons), scenario=scenario,
            use_class=use_class,
            starts_at=parse_time(start, "start") if start else svc.now(),
            ends_at=parse_time(end, "end", end_of_day=True), min_group_size=min_group_size)
        if as_json:
            return emit_json(auth.to_json(svc.now()))
        click.echo(auth.id)


@authorization.command("list")
@click.option("--status", type=click.Choice([s.value for s in AuthorizationStatus]),
              default=None, help="Only agreements in this (effective) status.")
@click.option("--operator", "operator_name", default=None, help="Only this operator's.")
@click.option("--analyst", "analyst_name", default=None, help="Only those naming this analyst.")
@click.option("--dataset", "dataset_name", default=None, help="Only those covering this dataset.")
@data_dir_option
@json_option
def authorization_list(status: str | None, operator_name: str | None,
                       analyst_name: str | None, dataset_name: str | None,
                       data_dir: Path | None, as_json: bool) -> None:
    """List authorizations (status is the effective one: past the end means expired)."""
    with catalog(data_dir) as svc:
        at = svc.now()
        found = svc.list_authorizations(
            AuthorizationStatus(status) if status else None, operator_name, analyst_name,
            dataset_name)
        if as_json:
            return emit_json([a.to_json(at) for a in found])
        print_table("authorizations", ["id", "status", "operator", "use", "analysts",
                                       "datasets", "starts", "ends"],
                    [(a.id, a.effective_status(at), a.operator, a.use_class.label,
                      ", ".join(sorted(a.analysts)), ", ".join(a.datasets),
                      format_time(a.starts_at), format_time(a.ends_at)) for a in found])


@authorization.command("show")
@click.argument("auth_id")
@data_dir_option
@json_option
def authorization_show(auth_id: str, data_dir: Path | None, as_json: bool) -> None:
    """Show one authorization with its scope."""
    with catalog(data_dir) as svc:
        auth = svc.get_authorization(auth_id)
        if as_json:
            return emit_json(auth.to_json(svc.now()))
        show_authorization(auth, svc.now())


def _status_command(name: str, method: str, help_text: str, roles: Sequence[Role]) -> None:
    @authorization.command(name, help=help_text)
    @click.argument("auth_id")
    @reason_option
    @click.option("--role", type=click.Choice([str(r) for r in roles]), default=str(roles[0]),
                  show_default=True, help="The role you act in.")
    @data_dir_option
    @actor_option
    def command(auth_id: str, reason: str, role: str, data_dir: Path | None,
                actor: str | None) -> None:
        with catalog(data_dir) as svc:
            auth = getattr(svc, method)(acting(actor, Role(role)), auth_id, reason)
            click.echo(f"authorization {auth.id} is now {auth.status}")


_status_command("suspend", "suspend", "Suspend an authorization: all access is refused.",
                [Role.AUTHORITY, Role.REGULATOR])
_status_command("resume", "resume", "Resume a suspended authorization.",
                [Role.AUTHORITY, Role.REGULATOR])
_status_command("revoke", "revoke", "Revoke an authorization for good.", [Role.AUTHORITY])


@authorization.command("extend")
@click.argument("auth_id")
@click.option("--end", required=True, help="New end date or time (term at most 5 years).")
@reason_option
@data_dir_option
@actor_option
def authorization_extend(auth_id: str, end: str, reason: str, data_dir: Path | None,
                         actor: str | None) -> None:
    """Extend an authorization's term."""
    with catalog(data_dir) as svc:
        auth = svc.extend(acting(actor), auth_id, parse_time(end, "end", end_of_day=True),
                          reason)
        click.echo(f"authorization {auth.id} now ends at {format_time(auth.ends_at)}")


@authorization.command("scope")
@click.argument("auth_id")
@click.option("--set", "sets", multiple=True,
              help="NAME or NAME:col1,col2 to add or replace in the scope (repeatable).")
@click.option("--mode", "modes", multiple=True, help="NAME=row_level|aggregate_only.")
@click.option("--epsilon", "epsilons", multiple=True, help="NAME=EPSILON.")
@click.option("--remove", "removes", multiple=True, help="Dataset to drop (repeatable).")
@reason_option
@data_dir_option
@actor_option
def authorization_scope(auth_id: str, sets: tuple[str, ...], modes: tuple[str, ...],
                        epsilons: tuple[str, ...], removes: tuple[str, ...], reason: str,
                        data_dir: Path | None, actor: str | None) -> None:
    """Change which datasets and columns an authorization covers."""
    with catalog(data_dir) as svc:
        auth = svc.change_scope(acting(actor), auth_id, reason=reason,
                                set_scope=scope_requests(sets, modes, epsilons), remove=removes)
        show_authorization(auth, svc.now())


@authorization.command("analysts")
@click.argument("auth_id")
@click.option("--add", "adds", multiple=True, help="Analyst to add (repeatable).")
@click.option("--remove", "removes", multiple=True, help="Analyst to remove (repeatable).")
@reason_option
@data_dir_option
@actor_option
def authorization_analysts(auth_id: str, adds: tuple[str, ...], removes: tuple[str, ...],
                           reason: str, data_dir: Path | None, actor: str | None) -> None:
    """Add or remove analysts of an authorization."""
    with catalog(data_dir) as svc:
        auth = svc.change_analysts(acting(actor), auth_id, reason=reason, add=adds,
                                   remove=removes)
        click.echo(f"analysts of {auth.id}: {', '.join(sorted(auth.analysts))}")


@authorization.command("expire")
@data_dir_option
def authorization_expire(data_dir: Path | None) -> None:
    """Record the expiry of every agreement past its end (run daily; access is refused anyway)."""
    with catalog(data_dir) as svc:
        expired = svc.expire_due()
        click.echo(f"expired: {len(expired)}" + (
            f" ({', '.join(a.id for a in expired)})" if expired else ""))


# --- data requests -------------------------------------------------------------------------


@authority.group()
def request() -> None:
    """Data requests: analysts asking for data outside their authorization."""


@request.command("create")
@click.option("--authorization", "auth_id", required=True, help="The analyst's authorization.")
@click.option("--analyst", "analyst_name", required=True, help="The analyst asking.")
@click.option("--dataset", "dataset_name", required=True, help="The dataset asked for.")
@click.option("--columns", default="", help="col1,col2 (default: every column).")
@click.option("--mode", default=None, help="Access mode asked for (row_level/aggregate_only).")
@reason_option
@data_dir_option
def request_create(auth_id: str, analyst_name: str, dataset_name: str, columns: str,
                   mode: str | None, reason: str, data_dir: Path | None) -> None:
    """File a data request on behalf of an analyst (acts as that analyst)."""
    with catalog(data_dir) as svc:
        cols = [c.strip() for c in columns.split(",") if c.strip()]
        req = svc.create_data_request(acting(analyst_name, Role.ANALYST), auth_id,
                                      dataset_name, cols, reason, mode)
        click.echo(req.id)


@request.command("list")
@click.option("--status", type=click.Choice([s.value for s in DataRequestStatus]),
              default=None, help="Only requests in this status.")
@click.option("--authorization", "auth_id", default=None, help="Only this authorization's.")
@data_dir_option
@json_option
def request_list(status: str | None, auth_id: str | None, data_dir: Path | None,
                 as_json: bool) -> None:
    """List data requests."""
    with catalog(data_dir) as svc:
        found = svc.list_data_requests(DataRequestStatus(status) if status else None, auth_id)
        if as_json:
            return emit_json([r.to_json() for r in found])
        print_table("data requests", ["id", "status", "authorization", "analyst", "dataset",
                                      "columns", "reason", "decision"],
                    [(r.id, r.status, r.authorization, r.requester, r.dataset,
                      ", ".join(r.columns), r.reason, r.decision_reason) for r in found])


@request.command("approve")
@click.argument("request_id")
@reason_option
@click.option("--mode", default=None, help="Access mode to grant for a new dataset.")
@click.option("--epsilon", type=float, default=None, help="Privacy budget for a new dataset.")
@data_dir_option
@actor_option
def request_approve(request_id: str, reason: str, mode: str | None, epsilon: float | None,
                    data_dir: Path | None, actor: str | None) -> None:
    """Approve a data request: the authorization's scope grows by what was asked."""
    with catalog(data_dir) as svc:
        req, auth = svc.approve_data_request(acting(actor), request_id, reason, mode, epsilon)
        click.echo(f"data request {req.id} approved; scope of {auth.id} now covers "
                   f"{', '.join(auth.datasets)}")


@request.command("refuse")
@click.argument("request_id")
@reason_option
@data_dir_option
@actor_option
def request_refuse(request_id: str, reason: str, data_dir: Path | None,
                   actor: str | None) -> None:
    """Refuse a data request."""
    with catalog(data_dir) as svc:
        req = svc.refuse_data_request(acting(actor), request_id, reason)
        click.echo(f"data request {req.id} refused")


@request.command("withdraw")
@click.argument("request_id")
@click.option("--analyst", "analyst_name", required=True, help="The analyst who asked.")
@reason_option
@data_dir_option
def request_withdraw(request_id: str, analyst_name: str, reason: str,
                     data_dir: Path | None) -> None:
    """Withdraw a pending data request (acts as the analyst who made it)."""
    with catalog(data_dir) as svc:
        req = svc.withdraw_data_request(acting(analyst_name, Role.ANALYST), request_id, reason)
        click.echo(f"data request {req.id} withdrawn")


@authority.command("states")
def states() -> None:
    """Print the state machines of authorizations and data requests (Markdown + Mermaid)."""
    from hub.catalog.states import states_markdown

    click.echo(states_markdown(), nl=False)


# --- the query-time check -------------------------------------------------------------------


@authority.command("check")
@click.argument("user")
@click.argument("dataset_name")
@click.option("--columns", default="", help="col1,col2 the query would touch.")
@click.option("--at", "at_text", default=None, help="Check at this date or time (default: now).")
@click.option("--authorization", "auth_id", default=None, help="The session's authorization.")
@data_dir_option
def check(user: str, dataset_name: str, columns: str, at_text: str | None,
          auth_id: str | None, data_dir: Path | None) -> None:
    """Would USER be allowed to query DATASET_NAME? Prints the grant as JSON, or why not."""
    with catalog(data_dir) as svc:
        at = parse_time(at_text, "--at") if at_text else None
        cols = [c.strip() for c in columns.split(",") if c.strip()]
        emit_json(svc.check_user_can_query(user, dataset_name, cols, at, auth_id).to_json())
