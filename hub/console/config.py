"""The console's own settings, declared and validated (shared locations come from ``Settings``).

Sources, highest first: explicit arguments, environment variables ``SHUYU_CONSOLE_<FIELD>``,
then the defaults below. When the hub runs the console as a managed service it sets
``JUPYTERHUB_API_URL``, ``JUPYTERHUB_API_TOKEN``, ``JUPYTERHUB_CLIENT_ID``,
``JUPYTERHUB_OAUTH_CALLBACK_URL``, ``JUPYTERHUB_SERVICE_PREFIX``, ``JUPYTERHUB_SERVICE_URL``
and ``JUPYTERHUB_BASE_URL``; those are read as fallbacks. The console refuses to start without
a hub API URL and token: it identifies people only through the hub.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from hub.service_config import ConfigError, HubServiceConfig, env_alias, url_prefix


def _alias(field: str, hub_var: str | None = None) -> AliasChoices:
    return env_alias("console", field, hub_var)


class ConsoleConfig(HubServiceConfig):
    service = "console"
    needs_hub = "identifies people only through the hub"
    model_config = SettingsConfigDict(
        env_prefix="SHUYU_CONSOLE_", extra="ignore", validate_default=True, populate_by_name=True
    )

    hub_api_url: str = Field(
        validation_alias=_alias("hub_api_url", "JUPYTERHUB_API_URL"),
        description="The hub's REST API, e.g. http://127.0.0.1:8081/hub/api: OAuth token "
        "exchange, who a browser's token belongs to, and analyst accounts.",
    )
    api_token: SecretStr = Field(
        validation_alias=_alias("api_token", "JUPYTERHUB_API_TOKEN"),
        description="The console's hub API token (its OAuth client secret too).",
    )
    client_id: str = Field(
        "service-console", validation_alias=_alias("client_id", "JUPYTERHUB_CLIENT_ID"),
        description="The console's OAuth client id at the hub.",
    )
    service_prefix: str = Field(
        "/services/console/",
        validation_alias=_alias("service_prefix", "JUPYTERHUB_SERVICE_PREFIX"),
        description="URL prefix the proxy routes to the console (the hub service prefix).",
    )
    service_url: str = Field(
        "http://127.0.0.1:8040", validation_alias=_alias("service_url", "JUPYTERHUB_SERVICE_URL"),
        description="Where the console listens (scheme, host and port).",
    )
    oauth_callback_url: str = Field(
        "", validation_alias=_alias("oauth_callback_url", "JUPYTERHUB_OAUTH_CALLBACK_URL"),
        description="The redirect URI registered at the hub; default <service_prefix>"
        "oauth_callback.",
    )
    hub_base_url: str = Field(
        "/", validation_alias=_alias("hub_base_url", "JUPYTERHUB_BASE_URL"),
        description="The hub's public base path; browsers are sent to <hub_host><hub_base_url>"
        "hub/api/oauth2/authorize to log in.",
    )
    hub_host: str = Field(
        "", validation_alias=_alias("hub_host", "JUPYTERHUB_HOST"),
        description="Scheme and host of the hub when it is not the console's own origin.",
    )
    authority_group: str = Field("authority", description="Hub group whose members may use "
                                 "the console; everyone else gets a 403 page.")
    analysts_group: str = Field("analysts", description="Hub group new analyst accounts join.")
    auth_cache_seconds: float = Field(
        5.0, ge=0, le=60,
        description="Seconds a hub answer about a browser's token is reused (0: ask every time). "
        "Removal from the authority group takes effect at most this long after the change.",
    )
    hub_timeout_seconds: float = Field(10.0, gt=0, le=120, description="Hub API timeout, s.")
    hub_db_url: str = Field(
        "", description="The hub's database, where NativeAuthenticator keeps passwords; default "
        "SQLite at <data_dir>/hub/jupyterhub.sqlite (as hub/jupyterhub_config.py places it).",
    )
    sandbox_prefix: str = Field(
        "shuyu", validation_alias=AliasChoices("SHUYU_CONSOLE_SANDBOX_PREFIX",
                                               "SHUYU_SANDBOX_PREFIX", "sandbox_prefix"),
        description="Name prefix of sandbox containers and volumes (hub/spawner.py: "
        "<prefix>-work-<user> volumes); the same variable as the spawner's.",
    )
    max_upload_bytes: int = Field(
        2 << 30, ge=1024, description="Largest dataset file accepted for upload, bytes."
    )
    sweep_interval_seconds: float = Field(
        60.0, ge=0,
        description="How often ended authorizations (revoked, expired) are looked for and "
        "their analysts' working volumes destroyed, s (0: only when asked on a page).",
    )
    cookie_secret: SecretStr | None = Field(
        None, description="Key that signs the console's cookies; default derived from the API "
        "token (so it changes when the token does, logging everyone out).",
    )

    @field_validator("hub_base_url")
    @classmethod
    def _base_url(cls, v: str) -> str:
        return url_prefix(v)

    @field_validator("api_token")
    @classmethod
    def _token(cls, v: SecretStr) -> SecretStr:
        if len(v.get_secret_value()) < 16:
            raise ValueError("is missing or too short to be a hub API token")
        return v

    @field_validator("sandbox_prefix")
    @classmethod
    def _docker_name(cls, v: str) -> str:
        if not v or not all(c.isalnum() or c in "_.-" for c in v):
            raise ValueError(f"must be a Docker name prefix (letters, digits, _ . -), got {v!r}")
        return v

    @property
    def authorize_url(self) -> str:
        return f"{self.hub_host.rstrip('/')}{self.hub_base_url}hub/api/oauth2/authorize"

    @property
    def secure_cookies(self) -> bool:
        return self.hub_host.startswith("https://")

    def hub_database_url(self, data_dir: Path) -> str:
        return self.hub_db_url or f"sqlite:///{(Path(data_dir) / 'hub' / 'jupyterhub.sqlite').resolve()}"


def load_console_config(**overrides: object) -> ConsoleConfig:
    """The console's settings from the environment; `overrides` win. Clear error if invalid."""
    return ConsoleConfig.load(**overrides)


__all__ = ["ConfigError", "ConsoleConfig", "load_console_config"]
