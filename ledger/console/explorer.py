"""The ledger explorer's content: matching entries, decoded, each proven in the signed tree.

A page is anchored to the latest signed checkpoint, whose log signature is checked with the
log's verifier key first. For each entry shown, its stored bytes are re-hashed, decoded, and an
RFC 9162 inclusion proof from the stored hashes is verified against that checkpoint's root; the
"verified" badge means exactly that, and the same proof is offered as a c2sp.org/tlog-proof@v1
download so anyone can repeat the check offline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.entry import decode_entry
from ledger.exceptions import EntryError, LedgerError, ProofError
from ledger.hashing import leaf_hash
from ledger.index import EventFilter, SubjectIndex, find_entries, subjects_of
from ledger.log import Log
from ledger.note import b64
from ledger.proofs import verify_inclusion
from ledger.sqlreads import entry_rows

PAGE_SIZE = 50


@dataclass
class EventView:
    index: int
    leaf_hash: str
    entry: dict[str, Any] | None
    verified: bool
    problem: str | None = None
    proof: list[str] = field(default_factory=list)
    subjects: list[tuple[str, str]] = field(default_factory=list)

    @property
    def type(self) -> str:
        return str((self.entry or {}).get("type", "?"))

    @property
    def at(self) -> str:
        return str((self.entry or {}).get("at", ""))

    @property
    def actor(self) -> str:
        entry = self.entry or {}
        role = entry.get("role")
        return f"{entry.get('actor', '')}" + (f" ({role})" if role else "")

    @property
    def pretty(self) -> str:
        return json.dumps(self.entry, ensure_ascii=False, indent=2, sort_keys=True)


@dataclass
class ExplorerPage:
    tree_size: int
    events: list[EventView]
    next_before: int | None


class SignedView:
    """The latest signed tree, its signature checked, and proofs of entries in it."""

    def __init__(self, log: Log, size: int | None = None):
        self.log = log
        self.note = log.checkpoint_with_cosignatures(size)
        self.checkpoint: Checkpoint = open_checkpoint(self.note, log.verifier())[0]

    @property
    def size(self) -> int:
        return self.checkpoint.size

    def event(self, index: int, operators: dict[str, str] | None = None) -> EventView:
        if not 0 <= index < self.size:
            raise LedgerError(f"entry {index} is not in the signed tree of size {self.size}")
        rows = entry_rows(self.log.store.reader, index, index + 1)
        if not rows:
            return EventView(index, "", None, False,
                             "the entry is missing from the database (the ledger was altered)")
        _, data, stored = rows[0]
        view = EventView(index, b64(leaf_hash(data)), None, False)
        try:
            view.entry = decode_entry(data)
        except EntryError as e:
            view.problem = f"stored bytes are not a valid entry: {e}"
        if leaf_hash(data) != stored:
            view.problem = "stored bytes do not match their stored leaf hash (the ledger was altered)"
            return view
        try:
            proof = self.log.store.inclusion_proof(index, self.size)
            verify_inclusion(stored, index, self.size, proof, self.checkpoint.root)
        except (ProofError, LedgerError) as e:
            view.problem = (f"the stored hashes do not prove this entry in the signed tree of "
                            f"size {self.size}: {e}")
            return view
        view.proof = [b64(h) for h in proof]
        view.verified = view.problem is None
        if view.entry is not None:
            view.subjects = sorted(subjects_of(view.entry, dict(operators or {})))
        return view


def explore(log: Log, index: SubjectIndex, flt: EventFilter, before: int | None,
            limit: int = PAGE_SIZE) -> ExplorerPage:
    """One page of matching events, newest first, below `before` (an index) when given."""
    view = SignedView(log)
    index.catch_up(view.size)
    found = find_entries(index.reader, flt, view.size, before, limit + 1)
    more = len(found) > limit
    found = found[:limit]
    operators = _operators(index)
    events = [view.event(i, operators) for i in found]
    return ExplorerPage(view.size, events, found[-1] if more and found else None)


def _operators(index: SubjectIndex) -> dict[str, str]:
    from sqlalchemy import text

    with index.reader.connect() as conn:
        rows = conn.execute(text("SELECT auth_id, operator FROM ledger_subject_operators"))
        return {a: o for a, o in rows}
