"""The verification page's checks: signature, cosignatures, and consistency with what was seen.

Three things are checked each time a regulator opens the page, all with keys and roots the
database cannot change behind the page's back:

1. the latest checkpoint's log signature, with the log's verifier key;
2. each cosignature, with the key the witness registered with the log (an unknown key is shown
   as such, never as valid);
3. consistency with the checkpoint this regulator's browser saw last: its size and root come
   from the browser (a cookie), not from the ledger database, and the RFC 9162 consistency proof
   from the stored hashes must lead from that root to the new signed root. A smaller tree, a
   different root at the same size, or a proof that fails is a red state: the log was rolled
   back, forked or altered.

The witness name each regulator cosigns with is a preference kept server-side
(:class:`RegulatorPrefs`); the cosigning itself happens on the regulator's machine with
``shuyu ledger witness cosign --url …`` so the witness key never reaches the server.
"""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass, field

from sqlalchemy import Column, MetaData, String, Table, text
from sqlalchemy.exc import IntegrityError

from ledger.checkpoint import open_checkpoint, parse_checkpoint
from ledger.exceptions import FormatError, LedgerError, ProofError, SignatureError
from ledger.log import Log
from ledger.note import b64, check_key_name, parse_vkey, split_note
from ledger.proofs import verify_consistency
from ledger.sqlreads import checkpoint_rows, witness_rows
from ledger.sqlstore import make_engines

SEEN_COOKIE = "shuyu_seen_checkpoint"


def _utc(ts: int | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


@dataclass(frozen=True)
class Seen:
    """A checkpoint a browser saw: size, root and when (Unix seconds)."""

    size: int
    root: bytes
    at: int

    def to_cookie(self) -> str:
        return f"{self.size}.{base64.urlsafe_b64encode(self.root).decode().rstrip('=')}.{self.at}"

    @classmethod
    def from_cookie(cls, value: str | None) -> "Seen | None":
        if not value:
            return None
        parts = value.split(".")
        if len(parts) != 3 or not all(p.isascii() and p.isdigit() for p in (parts[0], parts[2])):
            return None
        try:
            root = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        except (binascii.Error, ValueError):
            return None
        if len(root) != 32 or len(parts[0]) > 18:
            return None
        return cls(int(parts[0]), root, int(parts[2][:12]))


@dataclass
class CosignatureView:
    witness: str
    key_id: str
    time: str
    verified: bool


@dataclass
class Consistency:
    state: str  # first | same | consistent | inconsistent
    old_size: int | None = None
    old_when: str | None = None
    message: str | None = None

    @property
    def ok(self) -> bool:
        return self.state != "inconsistent"


@dataclass
class VerificationView:
    origin: str
    size: int
    root: str
    signed_at: str
    vkey: str
    note: str
    signature_ok: bool
    signature_error: str | None
    cosignatures: list[CosignatureView]
    consistency: Consistency
    witness_name: str | None
    witness_last: tuple[int, str] | None
    seen: Seen | None = None  # what the browser should remember now
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.signature_ok and self.consistency.ok and not self.problems


def _cosignatures(log: Log, note: bytes, origin: str) -> list[CosignatureView]:
    keys = {}
    for _, vkey, _ in witness_rows(log.store.reader):
        try:
            v = parse_vkey(vkey)
        except FormatError:
            continue
        keys[(v.name, v.key_id)] = v
    text_, sigs = split_note(note)
    out = []
    for sig in sigs:
        if sig.name == origin:
            continue
        raw = sig.raw
        ts = int.from_bytes(raw[:8], "big") if len(raw) == 72 else None
        key = keys.get((sig.name, sig.key_id))
        out.append(CosignatureView(sig.name, f"{sig.key_id:08x}", _utc(ts),
                                   bool(key and key.verify(text_, raw))))
    return out


def check_consistency(log: Log, seen: Seen | None, size: int, root: bytes) -> Consistency:
    if seen is None:
        return Consistency("first")
    when = _utc(seen.at)
    if seen.size > size:
        return Consistency("inconsistent", seen.size, when,
                           f"the log now ends at {size} entries but this browser saw a signed "
                           f"tree of {seen.size}: it was truncated or rolled back")
    if seen.size == size:
        if seen.root != root:
            return Consistency("inconsistent", seen.size, when,
                               f"two different signed roots for tree size {size}: the log forked")
        return Consistency("same", seen.size, when)
    if seen.size == 0:
        return Consistency("consistent", 0, when)
    try:
        proof = log.store.consistency_proof(seen.size, size)
        verify_consistency(seen.size, size, proof, seen.root, root)
    except (ProofError, LedgerError) as e:
        return Consistency("inconsistent", seen.size, when,
                           f"no valid consistency proof from size {seen.size} to {size}: {e}")
    return Consistency("consistent", seen.size, when)


def verification_view(log: Log, seen: Seen | None, witness_name: str | None) -> VerificationView:
    note = log.checkpoint_with_cosignatures()
    text_, _ = split_note(note)
    cp = parse_checkpoint(text_)
    vkey = log.verifier()
    sig_ok, sig_error = True, None
    try:
        open_checkpoint(note, vkey)
    except (SignatureError, FormatError) as e:
        sig_ok, sig_error = False, str(e)
    rows = checkpoint_rows(log.store.reader, cp.size, cp.size)
    signed_at = rows[0][3] if rows else None
    consistency = check_consistency(log, seen, cp.size, cp.root) if sig_ok else Consistency(
        "inconsistent", message="the checkpoint signature is invalid; nothing else can be trusted")
    last = None
    if witness_name:
        for size, witness, at in log.store.latest_cosigned():
            if witness == witness_name:
                last = (int(size), _utc(int(at)))
    view = VerificationView(
        origin=cp.origin, size=cp.size, root=b64(cp.root), signed_at=_utc(signed_at),
        vkey=vkey.vkey(), note=note.decode(), signature_ok=sig_ok, signature_error=sig_error,
        cosignatures=_cosignatures(log, note, cp.origin), consistency=consistency,
        witness_name=witness_name, witness_last=last,
    )
    if view.ok:
        view.seen = Seen(cp.size, cp.root, int(time.time()))
    return view


# --- per-regulator preferences ------------------------------------------------------------------

_metadata = MetaData()
prefs_t = Table(
    "ledger_console_regulators",
    _metadata,
    Column("user_name", String(200), primary_key=True),
    Column("witness", String(200), nullable=False),
)


def check_witness_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 200:
        raise FormatError("a witness name is non-empty and at most 200 characters")
    check_key_name(name)
    return name


class RegulatorPrefs:
    """The witness name each regulator cosigns with (a display preference, not a secret)."""

    def __init__(self, url: str):
        self.writer, self.reader = make_engines(url)
        _metadata.create_all(self.writer)

    def close(self) -> None:
        self.writer.dispose()
        if self.reader is not self.writer:
            self.reader.dispose()

    def witness(self, user: str) -> str | None:
        with self.reader.connect() as conn:
            return conn.execute(
                text("SELECT witness FROM ledger_console_regulators WHERE user_name = :u"),
                {"u": user},
            ).scalar()

    def set_witness(self, user: str, name: str) -> None:
        name = check_witness_name(name)
        with self.writer.begin() as conn:
            conn.execute(prefs_t.delete().where(prefs_t.c.user_name == user))
            try:
                conn.execute(prefs_t.insert().values(user_name=user, witness=name))
            except IntegrityError:  # pragma: no cover - the delete above ran in the same txn
                raise LedgerError("could not save the witness name; try again") from None
