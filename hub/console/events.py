"""Ledger entry types the console writes itself (the catalog service writes all the others).

These values are persisted in the ledger forever: renaming one needs a migration note for
auditors reading old entries. Entries are built as catalog ``AuditEvent``s and appended through
the catalog store's one write path, so a ledger failure refuses the action (``NotRecorded``).

- ``analyst.account_created``: a hub account for a registered analyst (user, groups); written
  before the hub is asked to make it. The temporary password is never in the ledger.
- ``authorization.access_ended``: an authorization ended (revoked or expired) and the console
  is about to stop its analysts' sandboxes and destroy their working volumes; lists the plan,
  including the volumes kept because the analyst still works under another authorization.
- ``authorization.data_destroyed``: the deletion record: which volumes (and the sandbox
  containers that held them) were destroyed, which were already gone, which could not be.
"""

from __future__ import annotations

from enum import StrEnum


class ConsoleEventType(StrEnum):
    """Ledger entry types written by the console (persisted; do not rename)."""

    ANALYST_ACCOUNT_CREATED = "analyst.account_created"
    AUTHORIZATION_ACCESS_ENDED = "authorization.access_ended"
    AUTHORIZATION_DATA_DESTROYED = "authorization.data_destroyed"
