"""The regulator console: server-rendered pages of the ledger service under ``<prefix>/console/``.

Pages (all need the regulator role, see :mod:`ledger.service.auth`): the ledger explorer with
filters and evidence export, the verification page, activity plots, the annual disclosure and
the authorizations recorded in the ledger. They work without JavaScript, in Chinese and
English. Each page's data also has a JSON twin under ``<prefix>/console/api/…``, described in
the service's OpenAPI document.

Suspending an authorization is the one action a regulator takes here, and it changes the
platform, not the ledger: it must go through the catalog service (``hub/``), which the ledger
may not import (a regulator must be able to run this service on its own). So the pages only
*link* to the hub-side regulator actions service (``hub/regulator_actions.py``, at
``SHUYU_REGULATOR_ACTIONS_URL``, default ``/services/regulator/``), which checks the same hub
identity and role, writes ``authorization.suspended`` to the ledger through the catalog before
the suspension takes effect, and sends the regulator back here.
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from ledger.service.auth import HubOAuth, HubOAuthConfig
from ledger.service.pages.common import ConsoleState, install_error_pages

DEFAULT_ACTIONS_URL = "/services/regulator/"


def install_console(app: FastAPI, prefix: str, oauth: HubOAuth | None = None,
                    actions_url: str | None = None) -> None:
    """Add the console's routes to the ledger service `app` (mounted under `prefix`)."""
    from ledger.service.pages import explorer, reports, session, verification

    if oauth is None:
        config = HubOAuthConfig.from_env()
        oauth = HubOAuth(config) if config else None
    if actions_url is None:
        actions_url = os.environ.get("SHUYU_REGULATOR_ACTIONS_URL", DEFAULT_ACTIONS_URL) or None
    app.state.console = ConsoleState(prefix=prefix, oauth=oauth, actions_url=actions_url)
    install_error_pages(app)
    for module in (session, explorer, verification, reports):
        app.include_router(module.router, prefix=prefix)


async def close_console(app: FastAPI) -> None:
    state: ConsoleState | None = getattr(app.state, "console", None)
    if state is None:
        return
    state.close()
    if state.oauth is not None:
        await state.oauth.aclose()
