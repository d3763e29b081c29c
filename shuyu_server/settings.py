"""One settings object for every server-side component.

Sources, highest priority first: explicit arguments (CLI flags), environment variables
(``SHUYU_DATA_DIR``, ``SHUYU_LEDGER__ORIGIN``, … with ``__`` between section and field), a TOML
file (``$SHUYU_CONFIG``, else ``./shuyu.toml`` when present), then the defaults below.
All state lives under ``data_dir`` unless a database URL points elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class LedgerSettings(BaseModel):
    origin: str = Field(
        "shuyu.local/ledger",
        description="Log origin line and name of the log's signing key (schema-less URL).",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the ledger database; default SQLite at "
        "<data_dir>/ledger/ledger.db. PostgreSQL: postgresql+psycopg://user@host/db.",
    )
    batch_max_size: int = Field(
        1024, ge=1, le=4096,
        description="Most entries per batch (one commit, one checkpoint). Batches hold whatever "
        "is queued, so this only matters under load, where larger batches share the fsyncs.",
    )
    batch_max_age_ms: float = Field(
        0.0,
        ge=0,
        le=1000,
        description="Extra wait (ms) for a batch to fill before committing. 0: commit what is "
        "queued at once; batches still form from appends that arrive during each commit.",
    )
    host: str = Field("127.0.0.1", description="Address the ledger service listens on.")
    port: int = Field(8020, ge=1, le=65535, description="Port of the ledger service.")
    prefix: str = Field(
        "",
        description="URL path prefix the ledger service is served under, e.g. /services/ledger "
        "when JupyterHub runs it as a service; empty for the root.",
        pattern=r"^(/[A-Za-z0-9._~-]+)*$",
    )

    @field_validator("origin")
    @classmethod
    def _origin_is_key_name(cls, v: str) -> str:
        if not v or "+" in v or any(c.isspace() for c in v):
            raise ValueError("origin must be non-empty with no spaces or '+' (it names the key)")
        return v


class ControlSettings(BaseModel):
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the control database (catalog, authorizations, requests, "
        "releases, budgets); default SQLite at <data_dir>/control.db.",
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SHUYU_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    data_dir: Path = Field(Path("var"), description="Directory holding all state.")
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    control: ControlSettings = Field(default_factory=ControlSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file())
        return (init_settings, env_settings, toml)

    # --- derived locations ---------------------------------------------------------------

    @property
    def ledger_dir(self) -> Path:
        return self.data_dir / "ledger"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def domain_dir(self) -> Path:
        """The domain store: DuckDB file(s) with the raw data, opened read-only by the gateway."""
        return self.data_dir / "domain"

    @property
    def pseudonym_keys_dir(self) -> Path:
        """Keys for keyed pseudonyms, kept apart from the data (GB/T 35273 §6.2)."""
        return self.keys_dir / "pseudonym"

    @property
    def control_database_url(self) -> str:
        return self.control.database_url or f"sqlite:///{(self.data_dir / 'control.db').resolve()}"

    @property
    def ledger_database_url(self) -> str:
        return self.ledger.database_url or f"sqlite:///{(self.ledger_dir / 'ledger.db').resolve()}"


def config_file() -> Path | None:
    """The TOML file to read: $SHUYU_CONFIG (must exist), else ./shuyu.toml if present."""
    named = os.environ.get("SHUYU_CONFIG")
    if named:
        path = Path(named)
        if not path.is_file():
            raise FileNotFoundError(f"SHUYU_CONFIG names {path}, which is not a file")
        return path
    default = Path("shuyu.toml")
    return default if default.is_file() else None


def load_settings(**overrides: Any) -> Settings:
    """Settings from all sources; `overrides` (e.g. a CLI --data-dir) win over everything."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
