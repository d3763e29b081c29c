"""The ledger as the rest of Shuyu sees it: open a log, append events durably, read it back.

`Log.open(...)` gives readers (head, checkpoints, proofs, entries) and an `Appender`:
- if a sequencer (the ledger service) is listening on the log's socket, appends go to it, so
  appenders in every process share its batches;
- otherwise this process sequences its own batches under the database lock.
Either way `append` returns only after the entry's batch is committed and its checkpoint signed,
and raises `LedgerUnavailable` otherwise: callers must then refuse the action (fail closed).
"""

from __future__ import annotations

import fcntl
import json
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ledger.batching import GroupCommitter
from ledger.checkpoint import open_checkpoint, parse_checkpoint
from ledger.entry import encode_entry
from ledger.exceptions import EntryError, LedgerError, LedgerUnavailable
from ledger.guard import SignedHeadGuard
from ledger.ipc import SequencerClient, SequencerServer
from ledger.keys import load_key
from ledger.note import Ed25519Signer, Ed25519Verifier, format_note, parse_vkey, split_note
from ledger.sqlstore import EntryMeta, SqlLedgerStore, TreeHead


@dataclass(frozen=True)
class LogConfig:
    """Where one log lives. Built from the shared settings by the CLI and the services."""

    ledger_dir: Path
    keys_dir: Path
    database_url: str
    origin: str
    batch_max_size: int = 256
    batch_max_age: float = 0.005

    @property
    def key_path(self) -> Path:
        return self.keys_dir / "ledger.skey"

    @property
    def vkey_path(self) -> Path:
        return self.ledger_dir / "ledger.vkey"

    @property
    def guard_path(self) -> Path:
        return self.ledger_dir / "last-signed.checkpoint"

    @property
    def socket_path(self) -> Path:
        return self.ledger_dir / "sequencer.sock"


def entry_meta(data: bytes) -> EntryMeta:
    """The filter columns of an entry (and a cheap sanity check of what is being appended)."""
    try:
        obj = json.loads(data)
    except ValueError:
        raise EntryError("entry is not JSON") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str) or not isinstance(
        obj.get("at"), str
    ):
        raise EntryError("entry needs string 'type' and 'at'")
    actor = obj.get("actor")
    return EntryMeta(obj["type"][:120], obj["at"][:24], str(actor)[:200] if actor else None)


class Log:
    def __init__(self, config: LogConfig):
        self.config = config
        self.store = SqlLedgerStore(config.database_url, config.origin)
        self.guard = SignedHeadGuard(config.guard_path)
        self._appender: Appender | None = None
        self._lock = threading.Lock()

    @classmethod
    def open(cls, config: LogConfig) -> "Log":
        log = cls(config)
        log.store.head()  # fails clearly if not initialized
        return log

    def close(self) -> None:
        if self._appender:
            self._appender.close()
        self.store.close()

    # --- keys ----------------------------------------------------------------------------

    def verifier(self) -> Ed25519Verifier:
        return parse_vkey(self.config.vkey_path.read_text().strip())

    def signer(self) -> Ed25519Signer:
        return load_key(self.config.key_path)

    # --- appending ---------------------------------------------------------------------

    def appender(self) -> "Appender":
        with self._lock:
            if self._appender is None:
                self._appender = Appender.connect(self)
            return self._appender

    def append(self, event: dict[str, Any]) -> int:
        return self.appender().append(event)

    def append_many(self, events: Iterable[dict[str, Any]]) -> list[int]:
        return self.appender().append_many(events)

    def commit_local(self, batch: list[bytes]) -> int:
        """Sequence one batch in this process (called by the group committer)."""
        signer = self._signer_cached()
        rows = [(data, entry_meta(data)) for data in batch]
        with open(self.config.guard_path.with_suffix(".lock"), "a") as lockf:
            last = self._last_signed()
            first, head, note = self.store.append_batch(rows, signer, last)
            fcntl.flock(lockf, fcntl.LOCK_EX)
            recorded = self.guard.read()
            if recorded is None or recorded.size < head.size:
                self.guard.write(note)
        return first

    def _signer_cached(self) -> Ed25519Signer:
        if not hasattr(self, "_signer"):
            self._signer = self.signer()
        return self._signer

    def _last_signed(self) -> TreeHead | None:
        """The newest head this log has signed: the guard file, else the newest stored one."""
        head = self.guard.read()
        if head is not None:
            return head
        note = self.store.latest_checkpoint()
        if note is None:
            return None
        cp, _ = open_checkpoint(note, self._signer_cached().verifier())
        return TreeHead(cp.size, cp.root)

    # --- reading -------------------------------------------------------------------------

    def checkpoint_with_cosignatures(self, size: int | None = None) -> bytes:
        """The signed checkpoint (latest, or at `size`) with every cosignature the log keeps."""
        note = self.store.latest_checkpoint() if size is None else self.store.checkpoint_at(size)
        if note is None:
            raise LedgerError(
                "the log has signed no checkpoint yet"
                if size is None
                else f"the log signed no checkpoint at size {size}"
            )
        text, sigs = split_note(note)
        cp = parse_checkpoint(text)
        extra = self.store.cosignature_lines(cp.size)
        lines = [s.line for s in sigs] + [line for line in extra if line not in {s.line for s in sigs}]
        return (text + "\n" + "".join(lines)).encode()


class Appender:
    """Durable, batched appends from this process (to the sequencer socket, or locally)."""

    def __init__(self, committer: GroupCommitter, client: SequencerClient | None):
        self.committer = committer
        self.client = client

    @classmethod
    def connect(cls, log: Log) -> "Appender":
        cfg = log.config
        client = None
        if cfg.socket_path.exists():
            try:
                client = SequencerClient(cfg.socket_path)
            except OSError:
                client = None  # stale socket: no sequencer running, sequence locally
        commit = client.commit if client else log.commit_local
        return cls(GroupCommitter(commit, cfg.batch_max_size, cfg.batch_max_age), client)

    @property
    def remote(self) -> bool:
        return self.client is not None

    def append_async(self, event: dict[str, Any]) -> "Future[int]":
        return self.committer.submit([encode_entry(event)])

    def append(self, event: dict[str, Any]) -> int:
        return self._wait(self.committer.submit([encode_entry(event)]))

    def append_many(self, events: Iterable[dict[str, Any]]) -> list[int]:
        data = [encode_entry(e) for e in events]
        if not data:
            return []
        first = self._wait(self.committer.submit(data))
        return list(range(first, first + len(data)))

    @staticmethod
    def _wait(fut: "Future[int]") -> int:
        try:
            return fut.result()
        except LedgerError:
            raise
        except Exception as e:  # noqa: BLE001 - anything else is still "not recorded"
            raise LedgerUnavailable(f"the ledger could not record the event: {e}") from e

    def close(self) -> None:
        self.committer.close()
        if self.client:
            self.client.close()


class Sequencer:
    """The log's one long-running sequencer: group commit for this process and the socket."""

    def __init__(self, log: Log):
        self.log = log
        cfg = log.config
        self.committer = GroupCommitter(log.commit_local, cfg.batch_max_size, cfg.batch_max_age)
        self.server = SequencerServer(cfg.socket_path, self.committer.submit)
        self._lockf = None

    def start(self) -> None:
        lock_path = self.log.config.ledger_dir / "sequencer.lock"
        self._lockf = open(lock_path, "a")
        try:
            fcntl.flock(self._lockf, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lockf.close()
            raise LedgerError(f"another sequencer already runs for {self.log.config.ledger_dir}")
        self.log._appender = Appender(self.committer, None)
        self.server.start()

    def stop(self) -> None:
        self.server.stop()
        self.committer.close()
        if self._lockf:
            self._lockf.close()


def init_log(config: LogConfig) -> tuple[str, bool]:
    """Create the database and signing key if missing; return (vkey, created)."""
    from ledger.keys import load_or_create_key

    config.ledger_dir.mkdir(parents=True, exist_ok=True)
    signer, created = load_or_create_key(config.key_path, config.origin)
    store = SqlLedgerStore(config.database_url, config.origin)
    try:
        store.create()
    finally:
        store.close()
    vkey = signer.vkey()
    config.vkey_path.write_text(vkey + "\n")
    return vkey, created


__all__ = ["Log", "LogConfig", "Appender", "Sequencer", "init_log", "format_note"]
