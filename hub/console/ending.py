"""The end of an authorization: access revoked, analysts' working volumes destroyed, recorded.

When an agreement is revoked (from the console) or expires (its term ends), ``EndOfAuthorization
.process(auth_id)``:

1. refuses unless the agreement has ended (revoked, or expired by the clock);
2. plans, per analyst of the agreement: an analyst who still holds another current agreement
   (active or suspended, not ended) keeps their sandbox and volume, which they use under that
   agreement; the plan records which agreements, so the ledger says why. Everyone else's
   sandbox is stopped and their working volume destroyed;
3. appends ``authorization.access_ended`` with the plan (ledger first: if it cannot be written,
   nothing is done and the error says so);
4. stops those analysts' servers through the hub, removes their sandbox containers and volumes
   (``volumes.SandboxVolumes``);
5. appends ``authorization.data_destroyed``, the deletion record: volumes destroyed (with their
   creation time), already absent, kept, and anything that failed;
6. remembers the outcome (``storage.console_endings``): ``done``, or ``pending`` when something
   failed, in which case the next pass (the sweeper, or the button on the agreement's page)
   tries again and writes a new record.

``sweep()`` processes every ended agreement not yet ``done``; the console runs it every
``sweep_interval_seconds``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from hub.catalog.base import utc_now
from hub.catalog.enums import Role
from hub.catalog.events import Actor, AuditEvent
from hub.catalog.exceptions import CatalogError, PolicyRefused
from hub.catalog.records import AuthorizationRecord
from hub.catalog.service import CatalogService
from hub.catalog.states import AUTHORIZATION_CHANGEABLE, AuthorizationStatus
from hub.console.errors import ConsoleError
from hub.console.events import ConsoleEventType
from hub.console.hubapi import HubApi
from hub.console.storage import Ending, EndingStore
from hub.console.volumes import SandboxVolumes, VolumeOutcome

ENDED = frozenset({AuthorizationStatus.REVOKED, AuthorizationStatus.EXPIRED})
SWEEPER = Actor("shuyu-console", Role.SERVICE, "sweeper")


@dataclass
class Plan:
    destroy: list[str] = field(default_factory=list)  # analysts whose volume goes
    keep: dict[str, list[str]] = field(default_factory=dict)  # analyst -> other agreements

    def to_json(self, volumes: SandboxVolumes) -> dict[str, Any]:
        return {
            "destroy": [{"user": u, "volume": volumes.name_for(u)} for u in self.destroy],
            "keep": [{"user": u, "volume": volumes.name_for(u), "still_under": ids}
                     for u, ids in sorted(self.keep.items())],
        }


@dataclass
class EndingReport:
    authorization: str
    status: str
    servers_stopped: dict[str, list[str]] = field(default_factory=dict)
    volumes: list[VolumeOutcome] = field(default_factory=list)
    kept: dict[str, list[str]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {
            "authorization_status": self.status,
            "destroyed": [v.to_json() for v in self.volumes if v.destroyed],
            "absent": [v.to_json() for v in self.volumes if v.absent],
            "kept": [{"user": u, "still_under": ids} for u, ids in sorted(self.kept.items())],
            "servers_stopped": self.servers_stopped,
            "failures": self.failures,
        }


class EndOfAuthorization:
    def __init__(self, catalog: CatalogService, hub: HubApi, volumes: SandboxVolumes,
                 store: EndingStore, clock: Callable[[], datetime] = utc_now):
        self.catalog = catalog
        self.hub = hub
        self.volumes = volumes
        self.store = store
        self.clock = clock

    def plan(self, auth: AuthorizationRecord, at: datetime) -> Plan:
        plan = Plan()
        for user in sorted(auth.analysts):
            others = [
                a.id for a in self.catalog.list_authorizations(analyst=user)
                if a.id != auth.id and a.effective_status(at) in AUTHORIZATION_CHANGEABLE
            ]
            if others:
                plan.keep[user] = others
            else:
                plan.destroy.append(user)
        return plan

    def process(self, auth_id: str, actor: Actor = SWEEPER) -> EndingReport:
        at = self.clock()
        auth = self.catalog.get_authorization(auth_id)
        status = auth.effective_status(at)
        if status not in ENDED:
            raise PolicyRefused(
                f"authorization {auth_id} is {status}: working data is destroyed only after it "
                "is revoked or its term has ended")
        previous = self.store.get(auth_id)
        if previous is not None and previous.done:
            raise PolicyRefused(
                f"the working data of authorization {auth_id} was already destroyed "
                f"(ledger entry {previous.ledger_index})")
        plan = self.plan(auth, at)
        self._record(ConsoleEventType.AUTHORIZATION_ACCESS_ENDED, actor, auth, at,
                     {"authorization_status": str(status), "reason": auth.status_reason,
                      **plan.to_json(self.volumes)})
        report = self._carry_out(auth, str(status), plan)
        index = self._record(ConsoleEventType.AUTHORIZATION_DATA_DESTROYED, actor, auth,
                             self.clock(), report.to_json())
        self.store.save(Ending(auth_id, "done" if report.complete else "pending",
                               (previous.attempts if previous else 0) + 1, self.clock(),
                               report.to_json(), index))
        return report

    def _carry_out(self, auth: AuthorizationRecord, status: str, plan: Plan) -> EndingReport:
        report = EndingReport(auth.id, status, kept=dict(plan.keep))
        for user in plan.destroy:
            try:
                stopped = self.hub.stop_servers(user)
                if stopped:
                    report.servers_stopped[user] = stopped
            except ConsoleError as e:
                report.failures.append(f"{user}: sandbox not stopped: {e.message}")
                continue  # a running sandbox holds the volume; try again later
            try:
                outcome = self.volumes.destroy(user)
            except ConsoleError as e:
                report.failures.append(f"{user}: {e.message}")
                continue
            report.volumes.append(outcome)
            if outcome.error:
                report.failures.append(f"{user}: volume {outcome.volume}: {outcome.error}")
        return report

    def _record(self, kind: ConsoleEventType, actor: Actor, auth: AuthorizationRecord,
                at: datetime, details: dict[str, Any]) -> int:
        event = AuditEvent(kind, actor, at, operator=auth.operator,  # type: ignore[arg-type]
                           authorization=auth.id, details=details)
        return self.catalog.store.apply([], [event])[0]

    def due(self) -> list[str]:
        """Ended agreements whose working data is not destroyed yet."""
        at = self.clock()
        done = {e.authorization for e in self.store.all() if e.done}
        return [a.id for a in self.catalog.list_authorizations()
                if a.effective_status(at) in ENDED and a.id not in done]

    def sweep(self, actor: Actor = SWEEPER) -> dict[str, EndingReport | str]:
        """Process every agreement that is due; an error for one does not stop the others."""
        results: dict[str, EndingReport | str] = {}
        for auth_id in self.due():
            try:
                results[auth_id] = self.process(auth_id, actor)
            except (CatalogError, ConsoleError) as e:
                results[auth_id] = e.message
        return results
