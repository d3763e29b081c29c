"""The review service's own settings, declared and validated (shared locations: ``Settings``).

Sources, highest first: explicit arguments, environment variables ``SHUYU_REVIEW_<FIELD>``, then
the defaults below. When the hub runs the service it sets ``JUPYTERHUB_API_URL``,
``JUPYTERHUB_API_TOKEN``, ``JUPYTERHUB_CLIENT_ID``, ``JUPYTERHUB_SERVICE_PREFIX``,
``JUPYTERHUB_SERVICE_URL`` and ``JUPYTERHUB_OAUTH_CALLBACK_URL``; those are read as fallbacks.

The service refuses to start without a hub API URL, an API token and an OAuth client id: it
identifies every caller through the hub (browsers by hub OAuth, the client by its hub token).
"""

from __future__ import annotations

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import SettingsConfigDict

from hub.service_config import ConfigError, HubServiceConfig, env_alias
from release_review.checks.base import Thresholds


def _env(name: str, hub_var: str | None = None) -> AliasChoices:
    return env_alias("review", name, hub_var)


class ReviewConfig(HubServiceConfig):
    service = "review"
    title = "review service"
    model_config = SettingsConfigDict(env_prefix="SHUYU_REVIEW_", extra="ignore",
                                      validate_default=True, populate_by_name=True)

    hub_api_url: str = Field(
        validation_alias=_env("hub_api_url", "JUPYTERHUB_API_URL"),
        description="The hub's REST API, e.g. http://127.0.0.1:8081/hub/api; every caller is "
        "identified by its /user endpoint.")
    api_token: str = Field(
        validation_alias=_env("api_token", "JUPYTERHUB_API_TOKEN"), repr=False,
        description="The service's own hub token (the OAuth client secret).")
    client_id: str = Field(
        validation_alias=_env("client_id", "JUPYTERHUB_CLIENT_ID"),
        description="The service's hub OAuth client id (service-review under the hub).")
    service_prefix: str = Field(
        "/services/review/", validation_alias=_env("service_prefix", "JUPYTERHUB_SERVICE_PREFIX"),
        description="URL prefix the proxy routes to this service.")
    service_url: str = Field(
        "http://127.0.0.1:8040", validation_alias=_env("service_url", "JUPYTERHUB_SERVICE_URL"),
        description="Where the service listens (scheme, host and port).")
    oauth_callback_url: str = Field(
        "", validation_alias=_env("oauth_callback_url", "JUPYTERHUB_OAUTH_CALLBACK_URL"),
        description="The OAuth redirect URI registered with the hub; default "
        "<service_prefix>oauth_callback.")
    release_scope: str = Field(
        "custom:shuyu:release",
        description="Hub scope an API token must carry to submit or list releases (analysts and "
        "their sandbox servers' tokens hold it).")
    auth_cache_seconds: int = Field(
        5, ge=0, le=60,
        description="Seconds a hub answer about a token is reused; a revoked token stops "
        "working at most this long after the hub changes.")
    min_approvals: int = Field(
        1, ge=1, le=5,
        description="Approvals every request needs; requests whose sources include 重要 data "
        "always need two, from different reviewers.")
    max_upload_bytes: int = Field(
        Thresholds().max_bytes, ge=1024,
        description="Largest file accepted in one upload, bytes (the type gate's size limit).")
    check_sweep_seconds: float = Field(
        30.0, gt=0, le=3600,
        description="How often requests still waiting for their checks (after a restart or a "
        "ledger outage) are checked again, s.")
    cookie_secret: str = Field(
        "", repr=False,
        description="Key that signs the OAuth state cookie and form tokens (hex, 32+ bytes); "
        "random per process when empty (logins then last as long as the process).")

    @field_validator("api_token", "client_id")
    @classmethod
    def _not_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v.strip()


def load_review_config(**overrides: object) -> ReviewConfig:
    """The service's settings from the environment; `overrides` win. Clear error if invalid."""
    return ReviewConfig.load(**overrides)


__all__ = ["ConfigError", "ReviewConfig", "load_review_config"]
