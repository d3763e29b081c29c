"""The ledger as the rest of Shuyu sees it: open a log, append events durably, read it back.

`Log.open(...)` gives readers (head, checkpoints, proofs, entries) and an `Appender`:
- if a sequencer (the ledger service) is listening on the log's socket, appends go to it, so
  appenders in every process share its batches;
- otherwise this process sequences its own batches under the database lock (and a file lock
  beside the guard, so waiting processes queue in the kernel instead of polling SQLite).
Either way `append` returns only after the entry's batch is committed and its checkpoint signed,
and raises `LedgerUnavailable` otherwise: callers must then refuse the action (fail closed).
A bad entry raises `EntryError` and appends nothing.
"""

from __future__ import annotations

import fcntl
import os
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import orjson

from ledger.batching import GroupCommitter
from ledger.checkpoint import open_checkpoint, parse_checkpoint
from ledger.entry import (
    AT_PATTERN,
    MAX_ENTRY_BYTES,
    TYPE_PATTERN,
    canonical_bytes,
    encode_entry,
    prepare_entry,
)
from ledger.exceptions import EntryError, LedgerError, LedgerUnavailable
from ledger.guard import SignedHeadGuard
from ledger.ipc import BadEntryError, SequencerClient, SequencerServer
from ledger.keys import load_key
from ledger.note import Ed25519Signer, Ed25519Verifier, format_note, parse_vkey, split_note
from ledger.sqlstore import EntryMeta, SqlLedgerStore, TreeHead

Row = tuple[bytes, EntryMeta]
APPEND_TIMEOUT = 300.0  # seconds an append may wait for its batch before it counts as failed


@dataclass(frozen=True)
class LogConfig:
    """Where one log lives. Built from the shared settings by the CLI and the services."""

    ledger_dir: Path
    keys_dir: Path
    database_url: str
    origin: str
    batch_max_size: int = 1024
    batch_max_age: float = 0.0

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

    @property
    def lock_path(self) -> Path:
        """Serializes local sequencing on this host (held across the whole batch)."""
        return self.ledger_dir / "last-signed.lock"


_KNOWN_TYPES: set[str] = set()  # types already checked (there are few; the check runs per entry)


def _meta(kind: Any, at: Any, actor: Any) -> EntryMeta:
    if type(kind) is not str or kind not in _KNOWN_TYPES:
        if not isinstance(kind, str) or not TYPE_PATTERN.fullmatch(kind):
            raise EntryError(f"entry needs a 'type' of dotted lowercase nouns, got {kind!r}")
        if len(_KNOWN_TYPES) < 4096:
            _KNOWN_TYPES.add(kind)
    if not isinstance(at, str) or not AT_PATTERN.fullmatch(at):
        raise EntryError(f"entry 'at' must be UTC RFC 3339 with milliseconds, got {at!r}")
    return EntryMeta(kind[:120], at, str(actor)[:200] if actor else None)


def entry_meta(data: bytes) -> EntryMeta:
    """The filter columns of stored entry bytes, checking they are a plausible entry.

    Run by the sequencer on every entry it receives over the socket. (The canonical form is the
    client's job: `Appender` always encodes with RFC 8785; `verify` re-checks it on read.)
    """
    if not isinstance(data, bytes):
        raise EntryError(f"entry must be bytes, not {type(data).__name__}")
    if len(data) > MAX_ENTRY_BYTES:
        raise EntryError(f"entry is {len(data)} bytes, the limit is {MAX_ENTRY_BYTES}")
    try:
        obj = orjson.loads(data)  # (4-5x json.loads; stricter: no NaN, no invalid UTF-8)
    except orjson.JSONDecodeError:
        raise EntryError("entry is not JSON") from None
    if type(obj) is not dict:
        raise EntryError(f"an entry must be a JSON object, not {type(obj).__name__}")
    return _meta(obj.get("type"), obj.get("at"), obj.get("actor"))


def prepare_rows(entries: list[bytes]) -> list[Row]:
    """Check one request's entries (all or nothing) and pair each with its filter columns.

    The sequencer runs this on every entry it receives, so the usual case (bytes of a JSON
    object whose type was seen before and whose time is well-formed) is checked inline; anything
    else goes through `entry_meta`, which names what is wrong.
    """
    rows: list[Row] = []
    append, loads, known, at_ok = rows.append, orjson.loads, _KNOWN_TYPES, AT_PATTERN.fullmatch
    for i, data in enumerate(entries):
        if type(data) is bytes and len(data) <= MAX_ENTRY_BYTES:
            try:
                obj = loads(data)
            except orjson.JSONDecodeError:
                raise BadEntryError("entry is not JSON", i) from None
            if type(obj) is dict:
                kind, at = obj.get("type"), obj.get("at")
                if type(kind) is str and kind in known and type(at) is str and at_ok(at):
                    actor = obj.get("actor")
                    append((data, EntryMeta(kind[:120], at, str(actor)[:200] if actor else None)))
                    continue
        try:
            append((data, entry_meta(data)))
        except EntryError as e:
            raise BadEntryError(str(e), i) from None
    return rows


def encode_row(event: Any) -> Row:
    """Validate and canonicalize one event; its filter columns come from the object itself."""
    entry = prepare_entry(event)
    data = canonical_bytes(entry)
    return data, _meta(entry["type"], entry["at"], entry.get("actor"))


class Log:
    def __init__(self, config: LogConfig):
        self.config = config
        self.store = SqlLedgerStore(config.database_url, config.origin)
        self.guard = SignedHeadGuard(config.guard_path)
        self._appender: Appender | None = None
        self._lock = threading.Lock()
        self._signer: Ed25519Signer | None = None
        self._lock_fd: int | None = None

    @classmethod
    def open(cls, config: LogConfig) -> "Log":
        log = cls(config)
        try:
            log.store.head()  # fails clearly if not initialized
        except BaseException:
            log.store.close()
            raise
        return log

    def close(self) -> None:
        if self._appender:
            self._appender.close()
            self._appender = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        self.store.close()

    # --- keys ----------------------------------------------------------------------------

    def verifier(self) -> Ed25519Verifier:
        return parse_vkey(self.config.vkey_path.read_text().strip())

    def signer(self) -> Ed25519Signer:
        return load_key(self.config.key_path)

    def _signer_cached(self) -> Ed25519Signer:
        if self._signer is None:
            self._signer = self.signer()
        return self._signer

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

    def commit_local(self, batch: list[Row]) -> int:
        """Sequence one batch in this process; return the index of its first entry.

        Holds the host's sequencing lock from reading the last signed head until the guard
        records the new one, so the guard always names the newest checkpoint this host signed.
        """
        signer = self._signer_cached()
        fd = self._sequencing_lock_fd()
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            last = self._last_signed()
            first, head, note = self.store.append_batch(batch, signer, last)
            self.guard.write(note, after_read=True, head=head)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
        return first

    def _sequencing_lock_fd(self) -> int:
        if self._lock_fd is None:
            self.config.ledger_dir.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(self.config.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        return self._lock_fd

    def _last_signed(self) -> TreeHead | None:
        """The newest head this log has signed: the guard file, else the newest stored one.

        Without a guard (a new host, or a deleted file) the database's own newest checkpoint is
        the best evidence left; its signature is checked so a forged row cannot lower the bar.
        """
        head = self.guard.read()
        if head is not None:
            return head
        note = self.store.latest_checkpoint()
        if note is None:
            return None
        cp, _ = open_checkpoint(note, self._signer_cached().verifier())
        return TreeHead(cp.size, cp.root)

    def check_ready(self) -> TreeHead:
        """Refuse (LedgerUnavailable) unless the stored tree extends the last signed head."""
        try:
            return self.store.check_extends(self._last_signed())
        except LedgerUnavailable:
            raise
        except LedgerError as e:
            raise LedgerUnavailable(f"the ledger refuses to append: {e}") from e

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
        own = {s.line for s in sigs}
        lines = [s.line for s in sigs] + [line for line in extra if line not in own]
        return (text + "\n" + "".join(lines)).encode()


class Appender:
    """Durable, batched appends from this process (to the sequencer socket, or locally).

    `append_async` returns a future at once, so one thread can keep many appends in flight
    (they share batches); `append` and `append_many` wait for durability.
    """

    def __init__(self, committer: GroupCommitter | None, client: SequencerClient | None,
                 log: Log | None = None):
        self.committer = committer
        self.client = client
        self._log = log
        self._switch = threading.Lock()

    @classmethod
    def connect(cls, log: Log) -> "Appender":
        client = _connect_client(log.config)
        committer = None if client else _local_committer(log)
        return cls(committer, client, log)

    @property
    def remote(self) -> bool:
        return self.client is not None

    def append_async(self, event: dict[str, Any]) -> "Future[int]":
        return self._submit([event])

    def append(self, event: dict[str, Any]) -> int:
        return self._wait(self._submit([event], sync=True))

    def append_many(self, events: Iterable[dict[str, Any]]) -> list[int]:
        events = list(events)
        if not events:
            return []
        first = self._wait(self._submit(events, sync=True))
        return list(range(first, first + len(events)))

    def _submit(self, events: list[Any], sync: bool = False) -> "Future[int]":
        """Encode (all or nothing) and queue one request; the future gives its first index.

        With `sync` the caller waits for it at once: it reads the sequencer's answer itself,
        or, sequencing locally with the committer idle, commits the batch itself."""
        try:
            client = self._live_client()
            if client is not None:  # the sequencer derives the filter columns itself
                entries = [encode_entry(e) for e in events]
                try:
                    return client.submit(entries, sync=sync)
                except LedgerUnavailable:
                    if client.broken is None:
                        raise
                    # lost between the check and the submit; nothing was sent: go again
                    client = self._live_client()
                    if client is not None:
                        return client.submit(entries, sync=sync)
            assert self.committer is not None
            rows = [encode_row(e) for e in events]
            if sync:
                done = self.committer.lead([rows])
                if done is not None:
                    return done[0]
            return self.committer.submit(rows)
        except LedgerError:
            raise
        except Exception as e:  # noqa: BLE001 - could not even queue it: not recorded
            raise LedgerUnavailable(f"the ledger could not take the event: {e}") from e

    def _live_client(self) -> SequencerClient | None:
        """The sequencer connection; after it was lost, reconnect or sequence locally."""
        if self.client is None or self.client.broken is None or self._log is None:
            return self.client
        with self._switch:
            if self.client is not None and self.client.broken is not None:
                self.client.close(timeout=0)
                self.client = _connect_client(self._log.config)
                if self.client is None and self.committer is None:
                    self.committer = _local_committer(self._log)
        return self.client

    @staticmethod
    def _wait(fut: "Future[int]") -> int:
        try:
            return fut.result(timeout=APPEND_TIMEOUT)
        except (EntryError, LedgerUnavailable):
            raise
        except FutureTimeout:
            raise LedgerUnavailable(
                f"the ledger did not confirm the event within {APPEND_TIMEOUT:.0f} s"
            ) from None
        except Exception as e:  # noqa: BLE001 - anything else is still "not recorded"
            raise LedgerUnavailable(f"the ledger could not record the event: {e}") from e

    def close(self) -> None:
        if self.committer:
            self.committer.close()
        if self.client:
            self.client.close()


def _connect_client(cfg: LogConfig) -> SequencerClient | None:
    if not cfg.socket_path.exists():
        return None
    try:
        return SequencerClient(cfg.socket_path, max_entries=cfg.batch_max_size)
    except OSError:
        return None  # stale socket: no sequencer running, sequence locally


def _local_committer(log: Log) -> GroupCommitter:
    cfg = log.config
    return GroupCommitter(log.commit_local, cfg.batch_max_size, cfg.batch_max_age)


class Sequencer:
    """The log's one long-running sequencer: group commit for this process and the socket.

    `start()` takes the host's sequencer lock (a second sequencer for the same ledger directory
    is refused), checks that the database still extends the last signed checkpoint, and only
    then binds the socket.
    """

    def __init__(self, log: Log):
        self.log = log
        cfg = log.config
        self.committer = GroupCommitter(log.commit_local, cfg.batch_max_size, cfg.batch_max_age)
        self.server = SequencerServer(cfg.socket_path, self.committer.submit, prepare_rows,
                                      lead=self.committer.lead)
        self._lockf = None

    def start(self) -> None:
        cfg = self.log.config
        cfg.ledger_dir.mkdir(parents=True, exist_ok=True)
        self._lockf = open(cfg.ledger_dir / "sequencer.lock", "a")
        try:
            fcntl.flock(self._lockf, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lockf.close()
            self._lockf = None
            raise LedgerError(f"another sequencer already runs for {cfg.ledger_dir}") from None
        try:
            self.log.check_ready()
            self.log._appender = Appender(self.committer, None, self.log)
            self.server.start()
        except BaseException:
            self._lockf.close()
            self._lockf = None
            raise

    def stop(self) -> None:
        self.server.stop()
        self.committer.close()
        if self._lockf:
            self._lockf.close()
            self._lockf = None


def init_log(config: LogConfig) -> tuple[str, bool]:
    """Create the database and signing key if missing; return (vkey, created)."""
    from ledger.keys import load_or_create_key

    config.ledger_dir.mkdir(parents=True, exist_ok=True)
    signer, created = load_or_create_key(config.key_path, config.origin)
    vkey = signer.vkey()
    store = SqlLedgerStore(config.database_url, config.origin)
    try:
        store.create(vkey)
    finally:
        store.close()
    config.vkey_path.write_text(vkey + "\n")
    return vkey, created


__all__ = ["Log", "LogConfig", "Appender", "Sequencer", "init_log", "format_note"]
