"""The gateway's own settings, declared and validated (shared locations come from ``Settings``).

Sources, highest first: explicit arguments, environment variables ``SHUYU_GATEWAY_<FIELD>``,
then the defaults below. When the hub runs the gateway as a managed service it sets
``JUPYTERHUB_API_URL``, ``JUPYTERHUB_SERVICE_PREFIX`` and ``JUPYTERHUB_SERVICE_URL``; those are
read as fallbacks for ``hub_api_url``, ``service_prefix`` and ``service_url``.

The gateway refuses to start without a hub API URL: it identifies callers only through the hub.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from hub.service_config import ConfigError, HubServiceConfig, env_alias

SIZE_PATTERN = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)


class GatewayConfig(HubServiceConfig):
    service = "gateway"
    model_config = SettingsConfigDict(
        env_prefix="SHUYU_GATEWAY_", extra="ignore", validate_default=True, populate_by_name=True
    )

    hub_api_url: str = Field(
        validation_alias=env_alias("gateway", "hub_api_url", "JUPYTERHUB_API_URL"),
        description="The hub's REST API, e.g. http://127.0.0.1:8081/hub/api; every token is "
        "checked against its /user endpoint.",
    )
    service_prefix: str = Field(
        "/services/gateway/",
        validation_alias=env_alias("gateway", "service_prefix", "JUPYTERHUB_SERVICE_PREFIX"),
        description="URL prefix the proxy routes to the gateway (the hub service prefix).",
    )
    service_url: str = Field(
        "http://127.0.0.1:8030",
        validation_alias=env_alias("gateway", "service_url", "JUPYTERHUB_SERVICE_URL"),
        description="Where the gateway listens (scheme, host and port).",
    )
    sandbox_ip: str = Field(
        "",
        description="Also listen on this address, at service_url's port, so that sandboxes "
        "reach the gateway straight, not through the proxy (the hub sets it to the address its "
        "proxy listens on when it runs sandboxes; the host firewall opens the port to the "
        "sandbox network). Empty: only where service_url says.",
    )
    required_scope: str = Field(
        "custom:shuyu:query",
        description="Hub scope a token must carry to use the gateway (granted to analysts and "
        "to their servers' tokens in hub/jupyterhub_config.py).",
    )
    auth_cache_seconds: float = Field(
        5.0, ge=0, le=60,
        description="Seconds a hub answer about a token is reused (0: ask on every request). "
        "A revoked token or scope stops working at most this long after the hub changes.",
    )
    hub_timeout_seconds: float = Field(5.0, gt=0, le=60, description="Timeout of hub API calls, s.")
    query_timeout_seconds: float = Field(
        120.0, gt=0, le=3600, description="A query running longer is interrupted, s."
    )
    memory_limit: str = Field("2GB", description="DuckDB memory limit for all queries together.")
    threads: int = Field(2, ge=1, le=256, description="DuckDB worker threads.")
    max_rows: int = Field(
        1_000_000, ge=1,
        description="Row limit per query: longer results are cut here and say so.",
    )
    page_bytes: int = Field(
        8 << 20, ge=1 << 10,
        description="Target size of one result page (Arrow IPC stream), bytes.",
    )
    inline_page_bytes: int = Field(
        256 << 10, ge=0,
        description="A one-page result up to this size also comes inside the query's response "
        "(base64), saving the client a request; 0 turns this off. Bytes.",
    )
    max_result_bytes: int = Field(
        512 << 20, ge=1 << 10,
        description="Largest result (all pages) the gateway holds for one query, bytes.",
    )
    result_ttl_seconds: float = Field(
        600.0, gt=0, description="How long the pages of a result stay available, s."
    )
    plan_cache_entries: int = Field(
        1024, ge=0, le=1_000_000,
        description="Checked and rewritten queries remembered per SQL text and grant state "
        "(the authorization check itself runs on every query); 0 turns the cache off.",
    )
    timings_log: Path | None = Field(
        None,
        description="If set, a file that gets one JSON line per query with the wall time of "
        "each phase (policy, prepare, engine, pages, ledger) and the request thread's CPU "
        "time, in ms; no SQL or data (benchmarks read it).",
    )
    result_cache_bytes: int = Field(
        1 << 30, ge=1 << 10,
        description="Memory for pages of results not fully read yet; oldest go first, bytes.",
    )

    @field_validator("memory_limit")
    @classmethod
    def _size(cls, v: str) -> str:
        if not SIZE_PATTERN.match(v.strip()):
            raise ValueError(f"must be a size such as 2GB or 512MiB, got {v!r}")
        return v.strip()

    @field_validator("sandbox_ip")
    @classmethod
    def _ip(cls, v: str) -> str:
        v = v.strip()
        if v:
            ipaddress.ip_address(v)  # ValueError names the bad value
        return v

    @property
    def binds(self) -> list[tuple[str, int]]:
        """Every (host, port) to listen on: ``service_url``'s, and ``sandbox_ip`` at the same
        port. A wildcard address covers loopback too, so then it is the only one."""
        host, port = self.bind
        if not self.sandbox_ip or self.sandbox_ip == host:
            return [(host, port)]
        if ipaddress.ip_address(self.sandbox_ip).is_unspecified:
            return [(self.sandbox_ip, port)]
        return [(host, port), (self.sandbox_ip, port)]

    @field_validator("required_scope")
    @classmethod
    def _scope(cls, v: str) -> str:
        if not v or any(c.isspace() for c in v):
            raise ValueError("must be one hub scope name")
        return v


def load_gateway_config(**overrides: object) -> GatewayConfig:
    """The gateway's settings from the environment; `overrides` win. Clear error if invalid."""
    return GatewayConfig.load(**overrides)


__all__ = ["ConfigError", "GatewayConfig", "load_gateway_config"]
