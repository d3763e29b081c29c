"""What the settings of every hub-managed web service share (gateway, console, review).

Each service declares its own fields in a subclass, read from ``SHUYU_<SERVICE>_<FIELD>`` with
the variables the hub sets for a managed service (``JUPYTERHUB_API_URL``,
``JUPYTERHUB_SERVICE_URL``, …) as fallbacks. This base validates the fields they have in common
and turns pydantic's errors into one message that names each bad or missing variable.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from typing import Any, Callable, ClassVar, TypeVar
from urllib.parse import urlsplit

from pydantic import AliasChoices, ValidationError, field_validator
from pydantic_settings import BaseSettings

C = TypeVar("C", bound="HubServiceConfig")


class ConfigError(ValueError):
    """A service's configuration is missing or invalid; the message names the variable."""


def env_alias(service: str, field: str, hub_var: str | None = None) -> AliasChoices:
    """``SHUYU_<SERVICE>_<FIELD>``, then the hub's variable, then the field name itself."""
    names = [f"SHUYU_{service.upper()}_{field.upper()}"]
    if hub_var:
        names.append(hub_var)
    return AliasChoices(*names, field)


def http_url(v: str) -> str:
    """An http(s) URL with a host, without a trailing slash."""
    parts = urlsplit(v)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http(s) URL, got {v!r}")
    return v.rstrip("/")


def url_prefix(v: str) -> str:
    """A URL path prefix, starting and ending with one '/'."""
    if not v.startswith("/"):
        raise ValueError(f"must start with '/', got {v!r}")
    return "/" + v.strip("/") + "/" if v.strip("/") else "/"


class HubServiceConfig(BaseSettings):
    """Validators and derived values for the fields hub services share."""

    service: ClassVar[str]  # "gateway": names the variables and the error messages
    title: ClassVar[str] = ""  # how messages name the service; default `service`
    needs_hub: ClassVar[str] = "identifies callers only through the hub"

    @field_validator("hub_api_url", "service_url", check_fields=False)
    @classmethod
    def _http_url(cls, v: str) -> str:
        return http_url(v)

    @field_validator("service_prefix", check_fields=False)
    @classmethod
    def _prefix(cls, v: str) -> str:
        return url_prefix(v)

    @property
    def bind(self) -> tuple[str, int]:
        """(host, port) to listen on, from ``service_url``."""
        parts = urlsplit(getattr(self, "service_url"))
        return parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def binds(self) -> list[tuple[str, int]]:
        """Every (host, port) the service listens on (a service may add more than ``bind``)."""
        return [self.bind]

    @property
    def callback_url(self) -> str:
        """The OAuth redirect URI: the configured one, else ``<service_prefix>oauth_callback``."""
        return (getattr(self, "oauth_callback_url", "")
                or getattr(self, "service_prefix") + "oauth_callback")

    @classmethod
    def load(cls: type[C], **overrides: Any) -> C:
        """The settings from the environment; `overrides` (not None) win. Clear error if invalid."""
        try:
            return cls(**{k: v for k, v in overrides.items() if v is not None})
        except ValidationError as e:
            raise ConfigError(f"invalid {cls.title or cls.service} configuration: "
                              + "; ".join(cls._problems(e))) from None

    @classmethod
    def _problems(cls, e: ValidationError) -> list[str]:
        prefix = f"shuyu_{cls.service}_"
        problems = []
        for err in e.errors():
            where = ".".join(str(p) for p in err["loc"]) or "settings"
            name = where.lower().removeprefix(prefix)
            if err["type"] == "missing":
                problems.append(f"{name} is not set ({prefix.upper()}{name.upper()} or the "
                                f"hub's JUPYTERHUB_* variable): the {cls.title or cls.service} "
                                f"{cls.needs_hub}")
            else:
                problems.append(f"{name}: {err['msg']}")
        return problems


def caller_address(peer: str | None, forwarded_for: str | None) -> str | None:
    """The caller's address for the ledger.

    ``X-Forwarded-For`` counts only when the peer is on loopback (the hub's proxy, which listens
    there for nothing but itself); then its last hop, the one the proxy appended, is the caller
    and the rest is whatever the caller wrote. From any other peer (a sandbox calling the
    gateway straight) the header is the caller's own claim and the peer is the address.
    """
    if not forwarded_for or not peer or not _loopback(peer):
        return peer
    hop = forwarded_for.rsplit(",", 1)[-1].strip()
    if not hop:
        return peer
    return hop if hop == peer else f"{hop} (via {peer})"


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_service(title: str, load_config: Callable[[], HubServiceConfig],
                create_app: Callable[[Any], Any]) -> None:
    """``python -m <service>`` as the hub starts it: end with the hub, build the app, serve it
    where the config says; a configuration or startup refusal exits 2 with one line."""
    import uvicorn

    from ledger.exceptions import LedgerError
    from shuyu_server.errors import ServiceError
    from shuyu_server.lifecycle import end_with_hub

    end_with_hub()
    try:
        config = load_config()
        app = create_app(config)
    except (ConfigError, ServiceError, LedgerError, OSError) as e:
        print(f"error: the {title} cannot start: {e}", file=sys.stderr)
        sys.exit(2)
    binds = config.binds
    if len(binds) == 1:
        host, port = binds[0]
        uvicorn.run(app, host=host, port=port, log_level="info", access_log=False,
                    proxy_headers=False)
        return
    try:
        sockets = [listening_socket(host, port) for host, port in binds]
    except OSError as e:
        print(f"error: the {title} cannot listen: {e}", file=sys.stderr)
        sys.exit(2)
    server = uvicorn.Server(uvicorn.Config(app, log_level="info", access_log=False,
                                           proxy_headers=False))
    server.run(sockets=sockets)


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) and listening, as uvicorn would make it.

    Made with the protocol named (``IPPROTO_TCP``), as ``getaddrinfo`` gives it: asyncio turns
    Nagle's algorithm off (``TCP_NODELAY``) only on connections of such sockets, and a response
    written in two parts would otherwise wait for the client's delayed ACK, ~40 ms."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise OSError(e.errno, f"{host}:{port}: {e.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock
