"""``python -m hub.demo``: the demo state ``make up`` puts in a fresh data directory.

Each step is done only if it is not done yet, so running it again changes nothing:

1. synthetic Kunming data at a small scale (``SHUYU_DEMO_SCALE``, default 2,000 residents),
   generated into ``<data>/demo-source`` and loaded into the domain store (each load ledgered);
2. the catalog imported from the generator's ``catalog.json``;
3. a demo operator with its security officer, two analysts, and one authorization in force for
   both (enterprises row-level; residents and social insurance aggregate-only, as 重要 data);
4. hub accounts for every role: two analysts, two reviewers, a regulator, an authority user.
   Passwords are generated once and kept in ``<data>/demo-accounts.json`` (mode 0600).

It prints the accounts (with ``--print``, only that). The hub must be stopped while accounts
are written (``make up`` runs this before it starts the hub).
"""

from __future__ import annotations

import json
import secrets
import sys
from datetime import timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

from hub.accounts import ensure_account, hub_db_url

OPERATOR = "云数科技有限公司"
AUTHORITY_USER = "authority1"
ACCOUNTS = (  # name, groups, display name, what the role does here
    ("analyst1", ["analysts"], "李分析", "works in a sandbox under the demo authorization"),
    ("analyst2", ["analysts"], "王建模", "a second analyst under the same authorization"),
    ("reviewer1", ["reviewers"], "赵审核", "reviews release requests"),
    ("reviewer2", ["reviewers"], "钱审核", "second reviewer (two-person rule)"),
    ("regulator1", ["regulators"], "孙监管", "audits the ledger, may suspend"),
    (AUTHORITY_USER, ["authority"], "周主管", "registers data, grants authorizations"),
)
console = Console(stderr=True)


def passwords(data_dir: Path) -> dict[str, str]:
    """The demo passwords, made once (16 url-safe random characters each)."""
    path = data_dir / "demo-accounts.json"
    known = json.loads(path.read_text()) if path.exists() else {}
    changed = False
    for name, *_ in ACCOUNTS:
        if name not in known:
            known[name] = secrets.token_urlsafe(12)
            changed = True
    if changed:
        path.touch(mode=0o600)
        path.write_text(json.dumps(known, indent=2) + "\n")
    path.chmod(0o600)
    return known


def load_domain(settings, scale: int) -> Path:
    from hub.domain import DomainStore
    from hub.synthetic.generate import Options, write_dataset_dir
    from ledger.cli import log_config
    from ledger.log import Log

    source = settings.data_dir / "demo-source"
    if not (source / "catalog.json").exists():
        console.print(f"generating synthetic data ({scale:,} residents) into {source}")
        write_dataset_dir(source, Options(scale))
    store = DomainStore(settings.domain_dir)
    loaded = {t.name for t in store.tables()}
    catalog = json.loads((source / "catalog.json").read_text())
    if {d["name"] for d in catalog["datasets"]} <= loaded:
        console.print("domain store: already loaded")
        return source
    log = Log.open(log_config(settings))
    try:
        store.load_catalog_dir(source, audit=log.append)
    finally:
        log.close()
    console.print(f"domain store: loaded {len(catalog['datasets'])} datasets")
    return source


def grant_demo(settings, source: Path) -> str:
    from hub.catalog.agreements import ScopeRequest
    from hub.catalog.enums import AccessMode, Role
    from hub.catalog.events import Actor
    from hub.catalog.importer import import_catalog, load_catalog_file
    from hub.catalog.service import open_catalog

    actor = Actor(AUTHORITY_USER, Role.AUTHORITY, "make up")
    service = open_catalog(settings)
    try:
        import_catalog(service, actor, load_catalog_file(source / "catalog.json"))
        if service.store.get_operator(OPERATOR) is None:
            service.create_operator(actor, OPERATOR, "91530100MA6K000D3N", "陈安全")
        for name, groups, display, _ in ACCOUNTS:
            if "analysts" in groups and service.store.get_analyst(name) is None:
                service.add_analyst(actor, name, OPERATOR, display)
        if service.user_can_work("analyst1"):
            return service.check_user_can_work("analyst1")[0].id
        now = service.now()
        auth = service.create_authorization(
            actor, operator=OPERATOR, analysts=["analyst1", "analyst2"],
            scope=[ScopeRequest("enterprises", None, AccessMode.ROW_LEVEL),
                   ScopeRequest("residents", None, AccessMode.AGGREGATE_ONLY),
                   ScopeRequest("social_insurance", None, AccessMode.AGGREGATE_ONLY)],
            scenario="企业用工与社保缴纳统计（演示）", use_class="public_governance",
            starts_at=now - timedelta(minutes=1), ends_at=now + timedelta(days=365))
        console.print(f"authorization {auth.id} granted to analyst1, analyst2")
        return auth.id
    finally:
        service.close()


def print_accounts(data_dir: Path, url: str) -> None:
    known = passwords(data_dir)
    table = Table(title=f"Shuyu demo accounts — log in at {url}/hub/login")
    for column in ("user", "role (group)", "password", "does"):
        table.add_column(column)
    for name, groups, display, does in ACCOUNTS:
        table.add_row(f"{name} ({display})", ", ".join(groups), known[name], does)
    Console(width=max(Console().width, 110)).print(table)


def main(argv: list[str]) -> int:
    import argparse

    from shuyu_server.settings import load_settings

    parser = argparse.ArgumentParser(prog="python -m hub.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--scale", type=int, default=2000)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--print", dest="only_print", action="store_true",
                        help="only print the accounts")
    args = parser.parse_args(argv)
    settings = load_settings(data_dir=args.data_dir)
    data_dir = settings.data_dir.resolve()
    if not args.only_print:
        source = load_domain(settings, args.scale)
        grant_demo(settings, source)
        known = passwords(data_dir)
        for name, groups, *_ in ACCOUNTS:
            ensure_account(hub_db_url(data_dir), name, known[name], groups)
        console.print(f"hub accounts: {len(ACCOUNTS)} ready")
    print_accounts(data_dir, args.url.rstrip("/"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
