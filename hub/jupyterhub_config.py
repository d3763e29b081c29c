"""Shuyu's base JupyterHub configuration: identity, roles and scopes, the query gateway service.

Run the hub with ``jupyterhub -f hub/jupyterhub_config.py``. The hub is the identity provider
of the whole system (DESIGN.md): every service checks hub identity and scopes on each request.

What this file sets, one function per concern (each takes the config object ``c``):

- ``configure_state``: the hub's database, cookie secret and proxy pid file under
  ``<SHUYU_DATA_DIR>/hub``;
- ``configure_network``: where the proxy and the hub listen (loopback by default; the proxy's
  API always on loopback, so sandboxes cannot rewrite routes);
- ``configure_authenticator``: NativeAuthenticator (bcrypt passwords, lockout after failed
  logins, common passwords refused, self-signup off unless asked for);
- ``configure_roles``: the groups (analysts, reviewers, regulators, authority) and the custom
  scope ``custom:shuyu:query`` that only analysts hold, so only their tokens can query;
- ``configure_gateway``: the query gateway as a hub-managed service (``python -m hub.gateway``)
  at ``/services/gateway/``; with sandboxes it also listens where the proxy does, at its own
  port, and sandboxes' clients call it there (one hop fewer per query; the host firewall opens
  that port to the sandbox network, and the gateway checks each request's hub token itself);
- ``configure_review``: the release review service (``python -m release_review.web``) at
  ``/services/review/``: analysts' clients submit with the scope ``custom:shuyu:release``;
  reviewers and analysts open it in a browser through hub OAuth (``access:services!service=
  review``, which sandbox server tokens never hold, so a sandbox cannot download a package);
- ``configure_console``: the authority console (``python -m hub.console``) at
  ``/services/console/``: only the authority group may open it (hub OAuth); its own token may
  create users, add them to the analysts group, read users and stop analysts' servers;
- ``configure_regulator``: the ledger service (``python -m ledger.service``, the log's sequencer,
  tlog-tiles and the regulator console) at ``/services/ledger/``, and the regulator actions
  service (``python -m hub.regulator_actions``: suspension through the catalog) at
  ``/services/regulator/``; both admit browsers through hub OAuth, the console pages and the
  actions only for the regulators group (``SHUYU_LEDGER__PORT``, default 8020;
  ``SHUYU_REGULATOR_PORT``, 8060; ``SHUYU_HUB_LEDGER=off`` leaves both out);
- ``configure_sandbox_environment``: what every sandbox server is told (``SHUYU_GATEWAY_URL``)
  and the scopes of its server token (the usual two, plus the gateway scope).

The spawner itself is not chosen here: hardening it (DockerSpawner on an internal network,
read-only root, dropped capabilities…), the session hooks and the sandbox watchdog service are
a separate layer, ``hub/spawner.py``'s ``configure_spawner(c, opts)``, applied last unless
``SHUYU_HUB_SANDBOXES=off`` (a hub without sandboxes); it extends ``c.Spawner.environment``.

Environment (all optional): ``SHUYU_DATA_DIR`` (default ``./var``), ``SHUYU_HUB_IP`` and
``SHUYU_HUB_PORT`` (public proxy address, default 127.0.0.1:8000), ``SHUYU_HUB_API_PORT`` (the
hub's own port, 8081), ``SHUYU_HUB_PROXY_API_PORT`` (8001), ``SHUYU_GATEWAY_PORT`` (8030),
``SHUYU_REVIEW_PORT`` (the gateway's + 10: 8040), ``SHUYU_CONSOLE_PORT`` (8050),
``SHUYU_HUB_ADMINS`` (comma-separated admin users),
``SHUYU_HUB_SIGNUP`` (``1`` lets people sign up; an admin must still authorize each account),
``SHUYU_HUB_SANDBOX_URL`` (how sandboxes reach the proxy, default the public address). Every
``SHUYU_*`` variable is passed on to the gateway and the review service, which read the shared
settings and their ``SHUYU_GATEWAY_*`` / ``SHUYU_REVIEW_*`` options from them.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

GATEWAY_SERVICE = "gateway"
GATEWAY_SCOPE = "custom:shuyu:query"
GROUPS = ("analysts", "reviewers", "regulators", "authority")
REVIEW_SERVICE = "review"
RELEASE_SCOPE = "custom:shuyu:release"
REVIEW_ACCESS = f"access:services!service={REVIEW_SERVICE}"
CONSOLE_SERVICE = "console"
LEDGER_SERVICE = "ledger"
REGULATOR_SERVICE = "regulator"
CONSOLE_ACCESS = f"access:services!service={CONSOLE_SERVICE}"
CONSOLE_SCOPES = ["admin:users", "groups!group=analysts", "servers!group=analysts",
                  "read:users", "list:users"]
SERVER_TOKEN_SCOPES = ["users:activity!user", "access:servers!server", GATEWAY_SCOPE,
                       RELEASE_SCOPE]


@dataclass(frozen=True)
class HubOptions:
    """The deployment-specific values, read from the environment."""

    data_dir: Path
    ip: str = "127.0.0.1"
    port: int = 8000
    api_port: int = 8081
    proxy_api_port: int = 8001
    gateway_port: int = 8030
    review_port: int = 8040
    console_port: int = 8050
    admins: tuple[str, ...] = ()
    signup: bool = False
    sandbox_url: str = ""
    sandboxes: bool = True
    passthrough: dict[str, str] = field(default_factory=dict)

    @property
    def listen_ip(self) -> str:
        """Where the proxy listens: with sandboxes, a loopback address becomes every address
        (sandboxes reach the host at their network's gateway address, never at loopback)."""
        if self.sandboxes and self.ip in ("127.0.0.1", "localhost", "::1"):
            return "0.0.0.0"
        return self.ip

    @property
    def hub_dir(self) -> Path:
        return self.data_dir / "hub"

    @property
    def public_url(self) -> str:
        host = "127.0.0.1" if self.ip in ("", "0.0.0.0") else self.ip
        return f"http://{host}:{self.port}"

    @property
    def gateway_url_for_sandboxes(self) -> str:
        base = (self.sandbox_url or self.public_url).rstrip("/")
        return f"{base}/services/{GATEWAY_SERVICE}/"


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name, "")
    if not text:
        return default
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 65536:
        raise ValueError(f"{name} must be a TCP port number, got {text!r}")
    return int(text)


def _beside(gateway_port: int) -> int:
    """The review service's default port: ten above the gateway's (8040 beside 8030), so a
    hub given only a gateway port (tests on free ports) does not take another hub's 8040."""
    return gateway_port + 10 if gateway_port <= 65525 else gateway_port - 10


def hub_options(env: Mapping[str, str] = os.environ) -> HubOptions:
    data_dir = Path(env.get("SHUYU_DATA_DIR") or "var").resolve()
    gateway_port = _port(env, "SHUYU_GATEWAY_PORT", 8030)
    passthrough = {k: v for k, v in env.items() if k.startswith("SHUYU_")}
    passthrough["SHUYU_DATA_DIR"] = str(data_dir)
    return HubOptions(
        data_dir=data_dir,
        ip=env.get("SHUYU_HUB_IP", "127.0.0.1"),
        port=_port(env, "SHUYU_HUB_PORT", 8000),
        api_port=_port(env, "SHUYU_HUB_API_PORT", 8081),
        proxy_api_port=_port(env, "SHUYU_HUB_PROXY_API_PORT", 8001),
        gateway_port=gateway_port,
        review_port=_port(env, "SHUYU_REVIEW_PORT", _beside(gateway_port)),
        console_port=_port(env, "SHUYU_CONSOLE_PORT", 8050),
        admins=tuple(a.strip() for a in env.get("SHUYU_HUB_ADMINS", "").split(",") if a.strip()),
        signup=env.get("SHUYU_HUB_SIGNUP", "") == "1",
        sandbox_url=env.get("SHUYU_HUB_SANDBOX_URL", ""),
        sandboxes=env.get("SHUYU_HUB_SANDBOXES", "docker") != "off",
        passthrough=passthrough,
    )


def _configured(section: Any, name: str, default: Any) -> Any:
    """A value set earlier in the config (another layer may have set it), else `default`."""
    return section[name] if name in section else default


def configure_state(c: Any, opts: HubOptions) -> None:
    opts.hub_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    c.JupyterHub.db_url = f"sqlite:///{opts.hub_dir / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(opts.hub_dir / "jupyterhub_cookie_secret")
    c.ConfigurableHTTPProxy.pid_file = str(opts.hub_dir / "jupyterhub-proxy.pid")


def configure_network(c: Any, opts: HubOptions) -> None:
    c.JupyterHub.ip = opts.ip
    c.JupyterHub.port = opts.port
    c.JupyterHub.hub_ip = "127.0.0.1"
    c.JupyterHub.hub_port = opts.api_port
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{opts.proxy_api_port}"


def configure_authenticator(c: Any, opts: HubOptions) -> None:
    # NativeAuthenticator, with a login handler that works on JupyterHub 6 (see hub/auth.py)
    c.JupyterHub.authenticator_class = "hub.auth.ShuyuAuthenticator"
    c.NativeAuthenticator.enable_signup = opts.signup
    c.NativeAuthenticator.open_signup = False
    c.NativeAuthenticator.minimum_password_length = 12
    c.NativeAuthenticator.check_common_password = True
    c.NativeAuthenticator.allowed_failed_logins = 5
    c.NativeAuthenticator.seconds_before_next_try = 600
    c.Authenticator.admin_users = set(opts.admins)
    # accounts are made by the operator/authority (hub/accounts.py): users in the hub database
    c.Authenticator.allow_existing_users = True


def configure_roles(c: Any) -> None:
    c.JupyterHub.custom_scopes = {
        GATEWAY_SCOPE: {
            "description": "Query authorized datasets through the Shuyu query gateway.",
        },
        RELEASE_SCOPE: {
            "description": "Submit outputs for release review and follow their status.",
        },
    }
    c.JupyterHub.load_groups = {name: {"users": []} for name in GROUPS}
    c.JupyterHub.load_roles = [
        {
            "name": "shuyu-analyst",
            "description": "Analysts of operating companies: query through the gateway.",
            "groups": ["analysts"],
            "scopes": ["self", GATEWAY_SCOPE, RELEASE_SCOPE, REVIEW_ACCESS],
        },
        {
            "name": "shuyu-reviewer",
            "description": "Security reviewers: the release review service's pages.",
            "groups": ["reviewers"],
            "scopes": ["self", REVIEW_ACCESS],
        },
    ]


def configure_gateway(c: Any, opts: HubOptions) -> None:
    """The gateway as a managed service; the proxy reaches it on loopback, and with sandboxes it
    listens where the proxy does as well (``SHUYU_GATEWAY_SANDBOX_IP``)."""
    environment = dict(opts.passthrough)
    if opts.sandboxes:
        environment["SHUYU_GATEWAY_SANDBOX_IP"] = opts.listen_ip
    c.JupyterHub.services = [
        *[s for s in _configured(c.JupyterHub, "services", []) if s.get("name") != GATEWAY_SERVICE],
        {
            "name": GATEWAY_SERVICE,
            "url": f"http://127.0.0.1:{opts.gateway_port}",
            "command": [sys.executable, "-m", "hub.gateway"],
            "environment": environment,
            "display": False,
        },
    ]


def configure_review(c: Any, opts: HubOptions) -> None:
    c.JupyterHub.services = [
        *[s for s in _configured(c.JupyterHub, "services", []) if s.get("name") != REVIEW_SERVICE],
        {
            "name": REVIEW_SERVICE,
            "url": f"http://127.0.0.1:{opts.review_port}",
            "command": [sys.executable, "-m", "release_review.web"],
            "environment": dict(opts.passthrough),
            "oauth_no_confirm": True,
            "display": True,
        },
    ]


def configure_console(c: Any, opts: HubOptions) -> None:
    c.JupyterHub.services = [
        *[s for s in _configured(c.JupyterHub, "services", []) if s.get("name") != CONSOLE_SERVICE],
        {
            "name": CONSOLE_SERVICE,
            "url": f"http://127.0.0.1:{opts.console_port}",
            "command": [sys.executable, "-m", "hub.console"],
            "environment": dict(opts.passthrough),
            "oauth_no_confirm": True,
            "display": True,
        },
    ]
    roles = _configured(c.JupyterHub, "load_roles", [])
    c.JupyterHub.load_roles = [
        *[r for r in roles if r.get("name") not in ("shuyu-authority", "shuyu-console")],
        {"name": "shuyu-authority", "description": "The data authority: the authority console.",
         "groups": ["authority"], "scopes": ["self", CONSOLE_ACCESS]},
        {"name": "shuyu-console", "description": "The authority console's own token: analyst "
         "accounts, and stopping analysts' sandboxes when an authorization ends.",
         "services": [CONSOLE_SERVICE], "scopes": list(CONSOLE_SCOPES)},
    ]


def configure_regulator(c: Any, opts: HubOptions) -> None:
    if opts.passthrough.get("SHUYU_HUB_LEDGER", "") == "off":
        return
    ledger_port = _port(opts.passthrough, "SHUYU_LEDGER__PORT", 8020)
    actions_port = _port(opts.passthrough, "SHUYU_REGULATOR_PORT", 8060)
    env = {**opts.passthrough, "SHUYU_REGULATOR_ACTIONS_URL": f"/services/{REGULATOR_SERVICE}/",
           "SHUYU_LEDGER_CONSOLE_URL": f"/services/{LEDGER_SERVICE}/console"}
    names = (LEDGER_SERVICE, REGULATOR_SERVICE)
    c.JupyterHub.services = [
        *[s for s in _configured(c.JupyterHub, "services", []) if s.get("name") not in names],
        {"name": LEDGER_SERVICE, "url": f"http://127.0.0.1:{ledger_port}",
         "command": [sys.executable, "-m", "ledger.service"], "environment": env,
         "oauth_no_confirm": True, "display": True},
        {"name": REGULATOR_SERVICE, "url": f"http://127.0.0.1:{actions_port}",
         "command": [sys.executable, "-m", "hub.regulator_actions"], "environment": env,
         "oauth_no_confirm": True, "display": False},
    ]
    roles = _configured(c.JupyterHub, "load_roles", [])
    c.JupyterHub.load_roles = [
        *[r for r in roles if r.get("name") not in ("shuyu-ledger-console", "shuyu-regulator")],
        # everyone in a platform group may open the ledger service's pages; the console itself
        # then admits only regulators and shows the others a clear 403 page
        {"name": "shuyu-ledger-console", "description": "Open the ledger service's pages.",
         "groups": list(GROUPS), "scopes": [f"access:services!service={LEDGER_SERVICE}"]},
        {"name": "shuyu-regulator", "description": "Regulators: suspend authorizations.",
         "groups": ["regulators"], "scopes": [f"access:services!service={REGULATOR_SERVICE}"]},
    ]


def configure_sandbox_environment(c: Any, opts: HubOptions) -> None:
    environment = dict(_configured(c.Spawner, "environment", {}))
    environment["SHUYU_GATEWAY_URL"] = opts.gateway_url_for_sandboxes
    c.Spawner.environment = environment
    c.Spawner.server_token_scopes = list(SERVER_TOKEN_SCOPES)


def apply(c: Any, opts: HubOptions | None = None) -> HubOptions:
    opts = opts or hub_options()
    configure_state(c, opts)
    configure_network(c, opts)
    configure_authenticator(c, opts)
    configure_roles(c)
    configure_gateway(c, opts)
    configure_review(c, opts)
    configure_console(c, opts)
    configure_regulator(c, opts)
    configure_sandbox_environment(c, opts)
    if opts.sandboxes:
        from hub.spawner import configure_spawner

        configure_spawner(c, opts)
    return opts


if "get_config" in globals():  # executed by JupyterHub as its config file
    apply(get_config())  # noqa: F821
