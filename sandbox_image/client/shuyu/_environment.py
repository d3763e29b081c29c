"""Where the client finds the gateway and its credentials: the environment the spawner sets.

- ``SHUYU_GATEWAY_URL``: the gateway's base URL (``http://…/services/gateway/``);
- ``JUPYTERHUB_API_TOKEN``: the hub token of this sandbox server, sent on every request;
- ``SHUYU_AUTHORIZATION`` (optional): the authorization to work under, when several apply.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from shuyu.errors import ConfigurationError

GATEWAY_URL = "SHUYU_GATEWAY_URL"
TOKEN = "JUPYTERHUB_API_TOKEN"
AUTHORIZATION = "SHUYU_AUTHORIZATION"


@dataclass(frozen=True)
class Connection:
    gateway_url: str
    token: str
    authorization: str | None = None


def from_environment() -> Connection:
    url = os.environ.get(GATEWAY_URL, "").strip()
    token = os.environ.get(TOKEN, "").strip()
    missing = [name for name, value in ((GATEWAY_URL, url), (TOKEN, token)) if not value]
    if missing:
        raise ConfigurationError(
            f"{' and '.join(missing)} not set: shuyu runs inside a Shuyu sandbox, whose "
            "server sets them (or pass gateway_url= and token= to shuyu.Client)",
            "not_configured")
    return Connection(url, token, os.environ.get(AUTHORIZATION, "").strip() or None)
