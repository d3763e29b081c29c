"""``CatalogService``: the one business-logic layer for the catalog and authorizations.

All reads and writes of catalog state go through it; it gets its storage as a ``CatalogStore``
(``storage.py``) and its time from a clock, so tests can move time. The methods are grouped by
concern in the modules it is assembled from:

- ``registry.RegistryService``: providers, datasets, operators, analysts;
- ``agreements.AgreementService``: authorization agreements, their status, term and scope;
- ``data_requests.DataRequestService``: requests for data outside the scope, and decisions;
- ``access``: the query-time check (``check_user_can_query`` and its bool twin).

``open_catalog(settings)`` builds the service from the shared settings: the control database
at ``settings.control_database_url`` and the ledger from ``settings`` (it must be initialized
with ``shuyu ledger init``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Sequence

from hub.catalog import access
from hub.catalog.base import Clock, utc_now
from hub.catalog.data_requests import DataRequestService
from hub.catalog.records import AuthorizationRecord, Grant
from hub.catalog.registry import RegistryService
from hub.catalog.storage import CatalogStore
from shuyu_server.settings import Settings

if TYPE_CHECKING:  # the ledger is imported when a catalog is opened, not when this module is
    from ledger.log import Log


class CatalogService(DataRequestService, RegistryService):
    """Catalog, operators, agreements and data requests; every change ledger-first."""

    def check_user_can_query(
        self,
        user: str,
        dataset: str,
        columns: Sequence[str] = (),
        at: datetime | None = None,
        authorization: str | None = None,
    ) -> Grant:
        return access.check_user_can_query(
            self.store, user, dataset, columns, at or self.now(), authorization
        )

    def user_can_query(
        self,
        user: str,
        dataset: str,
        columns: Sequence[str] = (),
        at: datetime | None = None,
        authorization: str | None = None,
    ) -> bool:
        return access.user_can_query(
            self.store, user, dataset, columns, at or self.now(), authorization
        )

    def check_user_can_work(
        self, user: str, at: datetime | None = None
    ) -> list[AuthorizationRecord]:
        return access.check_user_can_work(self.store, user, at or self.now())

    def user_can_work(self, user: str, at: datetime | None = None) -> bool:
        return access.user_can_work(self.store, user, at or self.now())

    def grants_for_user(
        self, user: str, at: datetime | None = None, authorization: str | None = None
    ) -> list[Grant]:
        return access.grants_for_user(self.store, user, at or self.now(), authorization)

    def close(self) -> None:
        closer = getattr(self.store, "close", None)
        if closer:
            closer()


class OpenedCatalog(CatalogService):
    """A service that owns its ledger handle and closes it too."""

    def __init__(self, store: CatalogStore, log: "Log", clock: Clock = utc_now):
        super().__init__(store, clock)
        self.log = log

    def close(self) -> None:
        super().close()
        self.log.close()


def open_catalog(settings: Settings, clock: Clock = utc_now,
                 remember_checks: bool = False) -> OpenedCatalog:
    """The service over the control database and ledger that `settings` name
    (``remember_checks``: see ``SqlAlchemyCatalogStore``)."""
    from hub.catalog.storage import SqlAlchemyCatalogStore
    from ledger.cli import log_config
    from ledger.log import Log

    log = Log.open(log_config(settings))
    store = None
    try:
        store = SqlAlchemyCatalogStore(settings.control_database_url, log, remember_checks)
        store.create()
    except Exception:
        if store is not None:
            store.close()
        log.close()
        raise
    return OpenedCatalog(store, log, clock)
