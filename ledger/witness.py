"""The regulator's witness: C2SP tlog-witness v1.0.0 ``add-checkpoint`` with tlog-cosignature v1.

A witness keeps, for each log it trusts (identified by its origin line), the latest checkpoint it
has cosigned. When a log offers a new checkpoint with a consistency proof from that size, the
witness checks the log's signature and the proof, records the new checkpoint, and returns an
Ed25519 cosignature (algorithm 0x04): "as of time T, this is the largest consistent tree I have
seen". A log that rolls back, truncates or forks cannot get a cosignature for the new tree, so
regulators holding cosigned checkpoints detect it without trusting the log's database.

The request body (tlog-witness, "add-checkpoint")::

    old <size>\\n             decimal, no leading zeros
    <base64 hash>\\n          0 to 63 consistency proof lines (RFC 6962 §2.1.2)
    \\n
    <signed checkpoint note>

The checks are pure functions (:func:`parse_add_checkpoint`, :func:`identify_checkpoint`,
:func:`check_against_latest`); each refusal is a :class:`WitnessRefusal` carrying the HTTP
status the spec requires, so the server maps errors to responses in one place.
:class:`Witness` adds the state: a directory holding the cosigner key, the trusted log keys and
one file per log with the latest cosigned checkpoint, replaced atomically under a file lock
together with the check (the spec's rule against rolling back between two concurrent requests).

Witness directory layout::

    witness.skey              cosigner signer key, mode 0600 (Go format, algorithm 0x04)
    witness.vkey              cosigner verifier key, to give to the log and to verifiers
    logs.vkeys                trusted log verifier keys, one a line; origin = key name
    checkpoints/<id>.note     latest cosigned checkpoint per log (log signature + cosignature)
    evidence/<id>-<size>-<sha>.note   checkpoints signed by a log that contradict a cosigned one
    .lock                     held while a checkpoint is checked and recorded
"""

from __future__ import annotations

import fcntl
import os
import struct
import time
from dataclasses import dataclass, replace
from hashlib import sha256
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from ledger.checkpoint import Checkpoint, parse_checkpoint
from ledger.exceptions import FormatError, LedgerError, ProofError, SignatureError
from ledger.hashing import EMPTY_ROOT, HASH_SIZE
from ledger.keys import load_key, load_or_create_key
from ledger.note import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    Ed25519Signer,
    Ed25519Verifier,
    Note,
    Signature,
    b64,
    open_note,
    parse_vkey,
    signature_for,
    split_note,
    unb64,
)
from ledger.proofs import verify_consistency

MAX_PROOF_LINES = 63  # tlog-witness: a client "MUST NOT send more than 63" proof lines
MAX_BODY_BYTES = 64 * 1024  # a checkpoint with 100 signatures and 63 proof lines is far smaller
SIZE_CONTENT_TYPE = "text/x.tlog.size"


# --- refusals ----------------------------------------------------------------------------------


class WitnessRefusal(LedgerError):
    """The witness will not cosign. `http_status` is the status tlog-witness requires."""

    http_status = 400

    def __init__(self, message: str, origin: str | None = None):
        super().__init__(message)
        self.origin = origin


class MalformedRequest(WitnessRefusal):
    """The body is not an add-checkpoint request (400)."""


class UnknownLog(WitnessRefusal):
    """The checkpoint's origin is not a log this witness trusts (404)."""

    http_status = 404


class BadLogSignature(WitnessRefusal):
    """No signature on the checkpoint verifies with a trusted key of its log (403)."""

    http_status = 403


class OldSizeTooLarge(WitnessRefusal):
    """The old size is larger than the checkpoint's size (400)."""


class WitnessConflict(WitnessRefusal):
    """409: the request does not follow from the latest cosigned checkpoint, of `latest_size`.

    The response body is that size (``text/x.tlog.size``) for both kinds of conflict.
    """

    http_status = 409

    def __init__(self, message: str, origin: str, latest_size: int):
        super().__init__(message, origin)
        self.latest_size = latest_size


class StaleOldSize(WitnessConflict):
    """The old size is not the size of the latest cosigned checkpoint.

    The log should retry with `latest_size` as the old size and a proof from it.
    """


class ConflictingRoot(WitnessConflict):
    """Same size as the latest cosigned checkpoint, different root: the log forked.

    The log signed two different trees of one size; the witness keeps the new note as evidence.
    A log that receives this conflict with `latest_size` equal to the old size it sent must not
    retry: it is not consistent with what the witness has seen.
    """


class BadConsistencyProof(WitnessRefusal):
    """The consistency proof from the latest cosigned checkpoint does not verify (422)."""

    http_status = 422


# --- the request -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AddCheckpointRequest:
    old_size: int
    proof: tuple[bytes, ...]
    checkpoint: bytes  # the signed note, as sent


def format_add_checkpoint(old_size: int, proof: Sequence[bytes], checkpoint: bytes) -> bytes:
    """The add-checkpoint request body (the log's side)."""
    if len(proof) > MAX_PROOF_LINES:
        raise FormatError(f"a consistency proof of {len(proof)} hashes is longer than 63")
    lines = [f"old {old_size}\n"] + [b64(h) + "\n" for h in proof] + ["\n"]
    return "".join(lines).encode() + checkpoint


def _parse_decimal(text: str, what: str) -> int:
    if not text.isascii() or not text.isdigit() or (text != "0" and text.startswith("0")):
        raise MalformedRequest(f"{what} {text[:30]!r} is not a decimal without leading zeros")
    return int(text)


def parse_add_checkpoint(body: bytes) -> AddCheckpointRequest:
    """Parse an add-checkpoint body strictly; raise MalformedRequest (400) on any deviation."""
    if len(body) > MAX_BODY_BYTES:
        raise MalformedRequest(f"request body is larger than {MAX_BODY_BYTES} bytes")
    head, sep, note = body.partition(b"\n\n")
    if not sep:
        raise MalformedRequest("request has no empty line between the proof and the checkpoint")
    try:
        lines = head.decode("ascii").split("\n")
    except UnicodeDecodeError:
        raise MalformedRequest("old size and proof lines must be ASCII") from None
    if not lines[0].startswith("old "):
        raise MalformedRequest(f"first line must be 'old <size>', got {lines[0][:40]!r}")
    old = _parse_decimal(lines[0][4:], "old size")
    proof_lines = lines[1:]
    if len(proof_lines) > MAX_PROOF_LINES:
        raise MalformedRequest(f"{len(proof_lines)} consistency proof lines, at most 63 allowed")
    proof = []
    for i, line in enumerate(proof_lines):
        try:
            h = unb64(line, f"proof line {i + 1}")
        except FormatError as e:
            raise MalformedRequest(str(e)) from None
        if len(h) != HASH_SIZE:
            raise MalformedRequest(f"proof line {i + 1} is {len(h)} bytes, not {HASH_SIZE}")
        proof.append(h)
    if not note:
        raise MalformedRequest("request has no checkpoint after the empty line")
    return AddCheckpointRequest(old, tuple(proof), note)


# --- the checks (pure) -------------------------------------------------------------------------


TrustedLogs = Mapping[str, Sequence[Ed25519Verifier]]


def identify_checkpoint(note: bytes, trusted: TrustedLogs) -> tuple[Checkpoint, Note]:
    """Find the checkpoint's log and verify its signature: 404 unknown origin, 403 no valid one.

    Signatures by keys the witness does not trust for that origin are ignored (kept unverified).
    """
    try:
        text, _ = split_note(note)
        cp = parse_checkpoint(text)
    except FormatError as e:
        raise MalformedRequest(f"checkpoint is malformed: {e}") from None
    keys = trusted.get(cp.origin)
    if not keys:
        raise UnknownLog(f"this witness does not know the log {cp.origin!r}", cp.origin)
    try:
        opened = open_note(note, keys)
    except SignatureError as e:
        raise BadLogSignature(f"checkpoint of {cp.origin}: {e}", cp.origin) from None
    except FormatError as e:
        raise MalformedRequest(f"checkpoint is malformed: {e}") from None
    return cp, opened


def check_against_latest(
    old_size: int, proof: Sequence[bytes], cp: Checkpoint, latest: Checkpoint | None
) -> None:
    """The tlog-witness checks of a new checkpoint against the latest one cosigned (or None).

    Raises OldSizeTooLarge (400), StaleOldSize (409), ConflictingRoot (409) or
    BadConsistencyProof (422); returns None when the checkpoint may be cosigned.
    """
    latest_size = latest.size if latest else 0
    latest_root = latest.root if latest else EMPTY_ROOT
    if old_size > cp.size:
        raise OldSizeTooLarge(
            f"old size {old_size} is larger than the checkpoint size {cp.size}", cp.origin
        )
    if old_size != latest_size:
        raise StaleOldSize(
            f"old size {old_size} is not the latest cosigned size {latest_size} of {cp.origin}",
            cp.origin,
            latest_size,
        )
    if cp.size == latest_size:
        if cp.root != latest_root:
            raise ConflictingRoot(
                f"{cp.origin} signed a different root for size {cp.size}, which this witness "
                f"already cosigned: the log forked",
                cp.origin,
                latest_size,
            )
        if proof:
            raise BadConsistencyProof("a proof between equal sizes must be empty", cp.origin)
        return
    if old_size == 0:
        if proof:
            raise BadConsistencyProof("the proof must be empty when the old size is 0", cp.origin)
        return
    try:
        verify_consistency(old_size, cp.size, proof, latest_root, cp.root)
    except ProofError as e:
        raise BadConsistencyProof(
            f"{cp.origin}: no consistency from size {old_size} to {cp.size}: {e}", cp.origin
        ) from None


# --- state -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CosignedState:
    """The latest checkpoint a witness cosigned for one log, and when."""

    checkpoint: Checkpoint
    note: bytes  # log signature(s) and this witness's cosignature
    cosigned_at: int


def log_file_id(origin: str) -> str:
    """File name stem for a log's state: origins contain '/' and other path characters."""
    return sha256(origin.encode()).hexdigest()[:32]


def cosignature_time(sig: Signature) -> int:
    """The timestamp of an Ed25519 cosignature line (u64 BE after the 4-byte key ID)."""
    raw = sig.raw
    if len(raw) != 72:
        raise FormatError(f"cosignature of {sig.name} is {len(raw)} bytes, not 8 + 64")
    return struct.unpack(">Q", raw[:8])[0]


def _atomic_write(path: Path, data: bytes) -> None:
    """Replace `path` with `data` durably: temp file, fsync, rename, fsync the directory."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dirfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)


class Witness:
    """A witness backed by a directory (see the module docstring for its layout)."""

    def __init__(self, directory: Path):
        self.dir = directory
        if not self.key_path.exists():
            raise LedgerError(
                f"{directory} is not a witness directory (run `shuyu ledger witness init`)"
            )
        self.signer: Ed25519Signer = load_key(self.key_path)
        if self.signer.alg != ALG_COSIGNATURE_V1:
            raise LedgerError(f"{self.key_path} is not a cosigner key (algorithm 0x04)")
        self.trusted = self._load_trusted()

    # --- layout ------------------------------------------------------------------------------

    @staticmethod
    def key_path_in(directory: Path) -> Path:
        return directory / "witness.skey"

    @property
    def key_path(self) -> Path:
        return self.key_path_in(self.dir)

    @property
    def logs_path(self) -> Path:
        return self.dir / "logs.vkeys"

    def state_path(self, origin: str) -> Path:
        return self.dir / "checkpoints" / f"{log_file_id(origin)}.note"

    @property
    def name(self) -> str:
        return self.signer.name

    def vkey(self) -> str:
        return self.signer.vkey()

    # --- setup -------------------------------------------------------------------------------

    @classmethod
    def init(cls, directory: Path, name: str, log_vkeys: Iterable[str]) -> tuple["Witness", bool]:
        """Create the cosigner key if missing (idempotent) and trust the given log keys."""
        verifiers = [parse_vkey(v) for v in log_vkeys]
        for v in verifiers:
            if v.alg != ALG_ED25519:
                raise LedgerError(f"log key {v.name} is not an Ed25519 log key (algorithm 0x01)")
        directory.mkdir(parents=True, exist_ok=True)
        signer, created = load_or_create_key(cls.key_path_in(directory), name, ALG_COSIGNATURE_V1)
        (directory / "witness.vkey").write_text(signer.vkey() + "\n")
        for sub in ("checkpoints", "evidence"):
            (directory / sub).mkdir(exist_ok=True)
        logs = directory / "logs.vkeys"
        known = logs.read_text().split() if logs.exists() else []
        for v in verifiers:
            if v.vkey() not in known:
                known.append(v.vkey())
        _atomic_write(logs, "".join(k + "\n" for k in known).encode())
        return cls(directory), created

    def _load_trusted(self) -> dict[str, list[Ed25519Verifier]]:
        try:
            lines = self.logs_path.read_text().split()
        except FileNotFoundError:
            raise LedgerError(
                f"{self.logs_path} is missing (run `shuyu ledger witness init`)"
            ) from None
        trusted: dict[str, list[Ed25519Verifier]] = {}
        for line in lines:
            v = parse_vkey(line)
            trusted.setdefault(v.name, []).append(v)
        return trusted

    # --- state -------------------------------------------------------------------------------

    def latest(self, origin: str) -> CosignedState | None:
        """The latest checkpoint this witness cosigned for `origin`, verified again on read."""
        path = self.state_path(origin)
        try:
            note = path.read_bytes()
        except FileNotFoundError:
            return None
        opened = open_note(note, [*self.trusted.get(origin, []), self.signer.verifier()])
        mine = [s for s in opened.sigs if s.name == self.name and s.key_id == self.signer.key_id]
        if not mine:
            raise LedgerError(f"{path} does not carry this witness's cosignature")
        cp = parse_checkpoint(opened.text)
        if cp.origin != origin:
            raise LedgerError(f"{path} holds a checkpoint of {cp.origin!r}, not {origin!r}")
        return CosignedState(cp, note, cosignature_time(mine[0]))

    def all_latest(self) -> list[CosignedState]:
        """The latest cosigned checkpoint of every trusted log that has one, by origin."""
        states = [self.latest(origin) for origin in sorted(self.trusted)]
        return [s for s in states if s is not None]

    # --- add-checkpoint ----------------------------------------------------------------------

    def add_checkpoint(self, body: bytes) -> str:
        """Handle one add-checkpoint request body; return the cosignature line(s).

        Raises WitnessRefusal (with its HTTP status) when the checkpoint must not be cosigned.
        """
        req = parse_add_checkpoint(body)
        return self.cosign(req.old_size, req.proof, req.checkpoint)

    def cosign(self, old_size: int, proof: Sequence[bytes], checkpoint: bytes) -> str:
        """Check `checkpoint` against the latest cosigned one, record it, return a cosignature.

        The trusted log keys are re-read on every call, so `witness init --log-vkey` takes
        effect without restarting a running server.
        """
        self.trusted = self._load_trusted()
        cp, opened = identify_checkpoint(checkpoint, self.trusted)
        lock_path = self.dir / ".lock"
        with open(lock_path, "a") as lockf:
            fcntl.flock(lockf, fcntl.LOCK_EX)  # check and record atomically (tlog-witness)
            current = self.latest(cp.origin)
            try:
                check_against_latest(old_size, proof, cp, current.checkpoint if current else None)
            except ConflictingRoot:
                self._keep_evidence(cp, opened)
                raise
            if current is not None and cp.size < current.checkpoint.size:  # excluded above
                raise LedgerError("refusing to roll back the witness state")
            # "as of time T": T never goes back for one log, even if the clock does
            last = current.cosigned_at if current else 0
            signer = replace(self.signer, clock=lambda: max(time.time(), last))
            line = signature_for(opened.text, signer).line
            log_sigs = "".join(s.line for s in opened.sigs)
            recorded = (opened.text + "\n" + log_sigs + line).encode()
            _atomic_write(self.state_path(cp.origin), recorded)
        return line

    def _keep_evidence(self, cp: Checkpoint, opened: Note) -> None:
        """Keep a log-signed checkpoint that contradicts a cosigned one (proof of a fork)."""
        note = (opened.text + "\n" + "".join(s.line for s in opened.sigs)).encode()
        digest = sha256(note).hexdigest()[:16]
        path = self.dir / "evidence" / f"{log_file_id(cp.origin)}-{cp.size}-{digest}.note"
        if not path.exists():
            path.parent.mkdir(exist_ok=True)
            _atomic_write(path, note)

    def evidence(self) -> list[Path]:
        return sorted((self.dir / "evidence").glob("*.note"))


def describe_state(state: CosignedState) -> str:
    """One line for `witness status`: origin, size, root and cosigning time (UTC)."""
    cp = state.checkpoint
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(state.cosigned_at))
    return f"{cp.origin}\t{cp.size}\t{b64(cp.root)}\t{when}"
