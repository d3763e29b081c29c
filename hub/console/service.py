"""``ConsoleService``: the one business layer behind the console's pages.

Routes call this (and, for reads and plain catalog changes, the catalog service it holds);
they never touch SQL, DuckDB, Docker or the hub themselves. What it adds to the catalog:

- registering an uploaded file: checks the metadata with the catalog's own rules first, loads
  the file into the domain store (``dataset.loaded``, ledger first), then registers it in the
  catalog (``dataset.registered``); a retry after a failure between the two finds the same file
  already loaded and only registers;
- analyst accounts: the catalog record (``analyst.added``), then ``analyst.account_created``
  in the ledger, then the hub user, its analysts-group membership and a temporary password
  shown once (``passwords.py``);
- the end of an authorization (``ending.py``): revoking through the console processes it at
  once; expiry is processed by the sweeper.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import pyarrow.parquet as pq

from hub.catalog import validation as v
from hub.catalog.enums import Grade, IdentifierClass, OpenAttribute, Role, UpdateFrequency
from hub.catalog.events import Actor, AuditEvent
from hub.catalog.exceptions import AlreadyExists, CatalogError, InvalidInput, NotRecorded
from hub.catalog.records import AnalystRecord, AuthorizationRecord, ColumnRecord, DatasetRecord
from hub.catalog.registry import clean_dataset
from hub.catalog.service import OpenedCatalog, open_catalog
from hub.console.config import ConsoleConfig
from hub.console.ending import EndingReport, EndOfAuthorization
from hub.console.errors import ConsoleError, DomainRefused, HubRefused, UploadNotReady
from hub.console.events import ConsoleEventType
from hub.console.hubapi import HubApi
from hub.console.passwords import NativePasswords
from hub.console.storage import Ending, SqlEndingStore
from hub.console.uploads import Upload, UploadStore
from hub.console.volumes import SandboxVolumes
from hub.domain import DatasetExists, DomainError, DomainStore, TableInfo, check_dataset_name
from ledger.exceptions import LedgerError
from shuyu_server.settings import Settings


@dataclass(frozen=True)
class RegistrationSpec:
    """What the registration form says, before the catalog checks it."""

    name: str
    provider: str
    grade: str
    open_attribute: str
    title: str = ""
    description: str = ""
    registration_code: str = ""
    acquired_on: str = ""
    update_frequency: str = ""
    shared_source: str = ""
    consent_reference: str = ""
    column_names: Sequence[str] = ()
    column_labels: Sequence[str] = ()
    column_classes: Sequence[str] = ()
    group_by: Sequence[int] = ()


@dataclass(frozen=True)
class HubAccount:
    exists: bool
    in_group: bool
    has_password: bool


class ConsoleService:
    def __init__(self, config: ConsoleConfig, catalog: OpenedCatalog, domain: DomainStore,
                 hub: HubApi, passwords: NativePasswords, volumes: SandboxVolumes,
                 endings: EndOfAuthorization, uploads: UploadStore):
        self.config = config
        self.catalog = catalog
        self.domain = domain
        self.hub = hub
        self.passwords = passwords
        self.volumes = volumes
        self.endings = endings
        self.uploads = uploads
        self._register_lock = threading.Lock()

    @classmethod
    def open(cls, settings: Settings, config: ConsoleConfig) -> "ConsoleService":
        catalog = open_catalog(settings)
        try:
            hub = HubApi(config.hub_api_url, config.api_token.get_secret_value(),
                         config.hub_timeout_seconds)
            volumes = SandboxVolumes(config.sandbox_prefix)
            store = SqlEndingStore(settings.control_database_url)
            endings = EndOfAuthorization(catalog, hub, volumes, store, catalog.now)
            uploads = UploadStore(Path(settings.data_dir) / "console" / "uploads",
                                  config.max_upload_bytes)
        except BaseException:
            catalog.close()
            raise
        return cls(config, catalog, DomainStore(settings.domain_dir), hub,
                   NativePasswords(config.hub_database_url(settings.data_dir)), volumes,
                   endings, uploads)

    def close(self) -> None:
        self.uploads.close()
        self.hub.close()
        self.passwords.close()
        self.volumes.close()
        closer = getattr(self.endings.store, "close", None)
        if closer:
            closer()
        self.catalog.close()

    @staticmethod
    def actor(name: str, source: str | None) -> Actor:
        return Actor(name, Role.AUTHORITY, source)

    # --- datasets ---------------------------------------------------------------------------

    def domain_tables(self) -> dict[str, TableInfo]:
        try:
            return {t.name: t for t in self.domain.tables()}
        except DomainError:
            return {}

    def dataset_spec(self, up: Upload, form: RegistrationSpec) -> DatasetRecord:
        """The checked catalog record the form describes (InvalidInput says what is wrong)."""
        sugg = up.suggestions()
        n = len(sugg)
        if not (len(form.column_names) == len(form.column_classes) == n):
            raise InvalidInput(f"the form must describe each of the file's {n} columns once "
                               f"(got {len(form.column_names)} names and "
                               f"{len(form.column_classes)} classes)")
        labels = list(form.column_labels) + [""] * (n - len(form.column_labels))
        bad = [g for g in form.group_by if not 0 <= g < n]
        if bad:
            raise InvalidInput(f"group-by positions {bad} are not columns of the file")
        columns = tuple(
            ColumnRecord(
                name=(form.column_names[i] or "").strip(), type=s.type,
                identifier_class=v.choice(IdentifierClass, form.column_classes[i],
                                          f"class of column {form.column_names[i]!r}"),
                group_by_allowed=i in set(form.group_by), label=labels[i] or "",
            )
            for i, s in enumerate(sugg))
        freq = form.update_frequency.strip()
        spec = DatasetRecord(
            name=form.name.strip(), provider=form.provider,
            grade=v.choice(Grade, form.grade, "grade") if form.grade else form.grade,
            open_attribute=v.choice(OpenAttribute, form.open_attribute, "open attribute")
            if form.open_attribute else form.open_attribute,
            columns=columns, title=form.title, description=form.description,
            update_frequency=v.choice(UpdateFrequency, freq, "update frequency") if freq
            else None,
            acquired_on=v.parse_date(form.acquired_on, "acquisition date"),
            registration_code=form.registration_code or None,
            shared_source=form.shared_source or None,
            consent_reference=form.consent_reference or None,
        )
        if not form.grade:
            raise InvalidInput("grade (数据分级) is required: core, important or general")
        if not form.open_attribute:
            raise InvalidInput("open attribute (开放属性) is required")
        if spec.acquired_on is None:
            raise InvalidInput("acquisition date (获取日期) is required (YYYY-MM-DD)")
        if spec.acquired_on > self.catalog.now().date():
            raise InvalidInput(f"acquisition date {spec.acquired_on} is in the future")
        return clean_dataset(spec)

    def register_upload(self, actor: Actor, upload_id: str,
                        form: RegistrationSpec) -> DatasetRecord:
        with self._register_lock:  # one registration at a time: the domain store has one writer
            up = self.uploads.get(upload_id)
            if up.state != "ready":
                raise UploadNotReady(f"upload {upload_id} is {up.state}; only an analysed upload "
                                     "can be registered")
            spec = self.dataset_spec(up, form)
            try:
                check_dataset_name(spec.name)
            except DomainError as e:
                raise InvalidInput(str(e)) from None
            if self.catalog.store.get_dataset(spec.name) is not None:
                raise AlreadyExists(f"dataset {spec.name!r} is registered already; choose "
                                    "another name")
            if spec.registration_code:
                for other in self.catalog.list_datasets():
                    if other.registration_code == spec.registration_code:
                        raise AlreadyExists(f"registration code {spec.registration_code!r} "
                                            f"already belongs to dataset {other.name!r}")
            version = self._load(actor, up, spec)
            record, _ = self.catalog.register_dataset(actor, replace(spec, version=version))
            self.uploads.mark_registered(upload_id, record.name)
            return record

    def _load(self, actor: Actor, up: Upload, spec: DatasetRecord) -> str:
        """Load the upload into the domain store under the form's column names; its version."""
        assert up.sha256 is not None and spec.acquired_on is not None
        current = self.domain_tables().get(spec.name)
        if current is not None:
            if current.version is not None and current.version.source == f"{up.id}.parquet":
                return current.version.version  # loaded by an earlier try of this registration
            raise DomainRefused(f"the domain store already has a table {spec.name!r} "
                                f"(version {current.version.version if current.version else '?'})"
                                "; choose another name")
        src = self.uploads.parquet_path(up.id)
        final = src.with_name(f"{up.id}.parquet")
        table = pq.read_table(src).rename_columns([c.name for c in spec.columns])
        pq.write_table(table, final, compression="zstd")
        version = f"{spec.acquired_on.isoformat()}+{up.sha256[:12]}"

        def audit(event: dict) -> int:
            entry = {**event, "actor": actor.name, "role": str(actor.role),
                     "details": {**event.get("details", {}), "upload_sha256": up.sha256,
                                 "uploaded_file": up.filename, "source": actor.source}}
            try:
                return self.catalog.log.append(entry)
            except LedgerError as e:
                raise NotRecorded(f"the ledger could not record dataset.loaded, so nothing was "
                                  f"loaded: {e}") from e

        try:
            self.domain.load(spec.name, final, audit=audit, version=version,
                             acquired_on=spec.acquired_on,
                             expected_columns=[(c.name, c.type) for c in spec.columns])
        except DatasetExists as e:
            raise DomainRefused(str(e)) from None
        except DomainError as e:
            raise DomainRefused(f"the domain store refused the load: {e}") from None
        finally:
            final.unlink(missing_ok=True)
        return version

    # --- analysts and their hub accounts ----------------------------------------------------

    def hub_account(self, user: str) -> HubAccount:
        model = self.hub.get_user(user)
        return HubAccount(model is not None,
                          model is not None and self.config.analysts_group in (
                              model.get("groups") or []),
                          self.passwords.has_password(user))

    def create_analyst(self, actor: Actor, user_name: str, operator: str,
                       display_name: str) -> tuple[AnalystRecord, str]:
        """The catalog record, then the hub account; the temporary password (shown once)."""
        analyst = self.catalog.add_analyst(actor, user_name, operator, display_name)
        return analyst, self.create_hub_account(actor, analyst.user_name)

    def create_hub_account(self, actor: Actor, user_name: str) -> str:
        analyst = self.catalog.get_analyst(user_name)
        if self.passwords.has_password(analyst.user_name):
            raise HubRefused(f"{analyst.user_name} already has a hub password; a hub admin can "
                             f"set a new one at /hub/change-password/{analyst.user_name}")
        event = AuditEvent(
            ConsoleEventType.ANALYST_ACCOUNT_CREATED, actor,  # type: ignore[arg-type]
            self.catalog.now(), operator=analyst.operator,
            details={"user": analyst.user_name, "groups": [self.config.analysts_group],
                     "authenticator": "native", "password": "temporary, shown once"})
        self.catalog.store.apply([], [event])
        self.hub.create_user(analyst.user_name)
        self.hub.add_to_group(self.config.analysts_group, analyst.user_name)
        return self.passwords.set_initial_password(analyst.user_name)

    # --- authorizations ---------------------------------------------------------------------

    def revoke(self, actor: Actor, auth_id: str,
               reason: str) -> tuple[AuthorizationRecord, EndingReport | None, str | None]:
        """Revoke, then destroy the working data at once; a destruction problem is reported
        (the sweeper retries) but never undoes the revocation."""
        record = self.catalog.revoke(actor, auth_id, reason)
        try:
            return record, self.endings.process(auth_id, actor), None
        except (CatalogError, ConsoleError) as e:
            return record, None, e.message

    def end_authorization(self, actor: Actor, auth_id: str) -> EndingReport:
        return self.endings.process(auth_id, actor)

    def ending_of(self, auth_id: str) -> Ending | None:
        return self.endings.store.get(auth_id)

    def sweep(self) -> dict[str, EndingReport | str]:
        return self.endings.sweep()


def parse_positions(values: Sequence[str]) -> list[int]:
    out = []
    for value in values:
        try:
            out.append(int(value))
        except (TypeError, ValueError):
            raise InvalidInput(f"group-by position {value!r} is not a number") from None
    return out

