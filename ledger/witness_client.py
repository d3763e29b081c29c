"""The log's side of C2SP tlog-witness: offer new checkpoints to witnesses, keep their cosignatures.

For each witness registered in the log's database (``shuyu ledger witness add-to-log``), the
latest signed checkpoint is sent with ``POST <url>/add-checkpoint``, with a consistency proof
from the size the witness last cosigned. The first guess of that size is the newest cosignature
the log holds from the witness; a ``409`` answer (``text/x.tlog.size``) tells the real size and
the request is retried once from there. Cosignatures are verified with the witness's registered
key before they are stored (``SqlLedgerStore.add_cosignature``), so the served checkpoint
(``Log.checkpoint_with_cosignatures``) only ever carries valid ones.

A refusal (the witness saw a larger tree, or a different tree of the same size, or the proof
fails) means the log and the witness disagree about history. It is never retried blindly: it is
logged at error level and appended to ``<ledger dir>/witness-refusals.jsonl`` with the witness's
answer, and the one-shot ``shuyu ledger witness push`` exits non-zero naming the witness.

:class:`WitnessPusher` runs the same push in a background thread of the ledger service.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from ledger.checkpoint import Checkpoint, parse_checkpoint
from ledger.exceptions import FormatError, LedgerError
from ledger.log import Log
from ledger.note import (
    ALG_COSIGNATURE_V1,
    Ed25519Verifier,
    b64,
    parse_signature_line,
    parse_vkey,
    split_note,
)
from ledger.witness import SIZE_CONTENT_TYPE, cosignature_time, format_add_checkpoint

log = logging.getLogger("shuyu.ledger.witness_client")

MAX_ATTEMPTS = 3  # a first guess, the size a 409 names, and one more if the witness moved on


class WitnessRefused(LedgerError):
    """A witness will not cosign the log's checkpoint: the two disagree about the log's history."""

    def __init__(self, message: str, witness: str, status: int | None, witness_size: int | None):
        super().__init__(message)
        self.witness = witness
        self.status = status
        self.witness_size = witness_size


class WitnessUnreachable(LedgerError):
    """The witness could not be asked (network error, timeout, unexpected answer)."""


@dataclass(frozen=True)
class RegisteredWitness:
    name: str
    verifier: Ed25519Verifier
    url: str | None  # None: a pull-mode witness that fetches checkpoints itself

    @classmethod
    def from_row(cls, name: str, vkey: str, url: str | None) -> "RegisteredWitness":
        return cls(name, parse_vkey(vkey), url)


def registered_witnesses(log_: Log) -> list[RegisteredWitness]:
    return [RegisteredWitness.from_row(*row) for row in log_.store.witnesses()]


def register_witness(log_: Log, vkey: str, url: str | None) -> RegisteredWitness:
    """Record a witness the log asks for cosignatures (replaces one of the same name)."""
    verifier = parse_vkey(vkey)
    if verifier.alg != ALG_COSIGNATURE_V1:
        raise LedgerError(f"{verifier.name}: a witness key must be a cosignature key (0x04)")
    if url is not None and not url.startswith(("http://", "https://")):
        raise LedgerError(f"witness URL {url!r} must start with http:// or https://")
    log_.store.add_witness(verifier.name, verifier.vkey(), url)
    return RegisteredWitness(verifier.name, verifier, url)


@dataclass(frozen=True)
class PushResult:
    witness: str
    size: int
    outcome: str  # "cosigned", "up-to-date", "refused", "unreachable"
    message: str = ""


def verified_cosignatures(text: str, body: str, witness: RegisteredWitness) -> list[str]:
    """The lines of a 200 answer that are valid cosignatures by `witness` of `text`.

    Lines from other keys are ignored (tlog-witness: clients MUST ignore unknown keys).
    """
    good = []
    for line in body.splitlines():
        if not line:
            continue
        try:
            sig = parse_signature_line(line)
        except FormatError:
            continue
        if (sig.name, sig.key_id) != (witness.name, witness.verifier.key_id):
            continue
        if witness.verifier.verify(text, sig.raw):
            good.append(sig.line)
    return good


def store_cosignatures(log_: Log, size: int, lines: list[str]) -> None:
    for line in lines:
        when = cosignature_time(parse_signature_line(line.rstrip("\n")))
        log_.store.add_cosignature(size, line, when)


class CosignatureRejected(LedgerError):
    """A cosigned checkpoint handed to the log is not one it can keep (unknown, invalid)."""


def accept_cosigned_checkpoint(log_: Log, note: bytes) -> list[str]:
    """Keep the cosignatures on a checkpoint a pull-mode witness hands back to the log.

    `note` is the checkpoint as the witness holds it: the log's text and signature followed by
    cosignature lines. The text must be exactly a checkpoint this log signed; each cosignature
    by a registered witness must verify (one that does not is refused), lines by other keys are
    ignored. Returns the stored lines; raises CosignatureRejected if there is none to store.
    """
    try:
        text, sigs = split_note(note)
        cp = parse_checkpoint(text)
    except FormatError as e:
        raise CosignatureRejected(f"not a cosigned checkpoint: {e}") from None
    ours = log_.store.checkpoint_at(cp.size)
    if ours is None or split_note(ours)[0] != text:
        raise CosignatureRejected(
            f"this log signed no checkpoint {cp.origin} {cp.size} {b64(cp.root)}"
        )
    witnesses = {(w.name, w.verifier.key_id): w for w in registered_witnesses(log_)}
    kept = []
    for sig in sigs:
        w = witnesses.get((sig.name, sig.key_id))
        if w is None:
            continue
        if not w.verifier.verify(text, sig.raw):
            raise CosignatureRejected(f"the cosignature by {sig.name} does not verify")
        kept.append(sig.line)
    if not kept:
        raise CosignatureRejected(
            "the checkpoint carries no cosignature by a registered witness "
            "(register it with `shuyu ledger witness add-to-log`)"
        )
    store_cosignatures(log_, cp.size, kept)
    return kept


def _witness_size(resp: httpx.Response) -> int | None:
    """The latest cosigned size from a 409 answer, or None if it does not carry one."""
    if not resp.headers.get("content-type", "").startswith(SIZE_CONTENT_TYPE):
        return None
    text = resp.text
    digits = text[:-1] if text.endswith("\n") else ""
    if not (digits.isascii() and digits.isdigit()) or (digits != "0" and digits.startswith("0")):
        return None
    return int(digits)


def push_checkpoint(
    log_: Log, witness: RegisteredWitness, note: bytes, http: httpx.Client, old: int
) -> tuple[int, list[str]]:
    """Offer `note` to one witness starting from `old`; return (cosigned size, stored lines).

    Raises WitnessRefused when the witness will not cosign, WitnessUnreachable on transport
    problems. Stores the verified cosignatures before returning.
    """
    if witness.url is None:
        raise LedgerError(f"witness {witness.name} has no URL (it pulls checkpoints itself)")
    text, _ = split_note(note)
    cp = parse_checkpoint(text)
    url = witness.url.rstrip("/") + "/add-checkpoint"
    for _ in range(MAX_ATTEMPTS):
        if old > cp.size:
            raise WitnessRefused(
                f"witness {witness.name} has cosigned size {old} but the log's latest checkpoint "
                f"is size {cp.size}: the log was truncated or rolled back",
                witness.name, 409, old,
            )
        proof = [] if old in (0, cp.size) else log_.store.consistency_proof(old, cp.size)
        try:
            resp = http.post(url, content=format_add_checkpoint(old, proof, note))
        except httpx.HTTPError as e:
            raise WitnessUnreachable(f"witness {witness.name} at {url}: {e}") from e
        if resp.status_code == 200:
            lines = verified_cosignatures(text, resp.text, witness)
            if not lines:
                raise WitnessUnreachable(
                    f"witness {witness.name} answered 200 without a valid cosignature by its key"
                )
            store_cosignatures(log_, cp.size, lines)
            return cp.size, lines
        if resp.status_code == 409:
            size = _witness_size(resp)
            if size is None:
                raise WitnessRefused(
                    f"witness {witness.name} refused size {cp.size} (409): {resp.text[:200]!r}",
                    witness.name, 409, None,
                )
            if size == old == cp.size:
                raise WitnessRefused(
                    f"witness {witness.name} cosigned a different tree of size {size} than the "
                    f"log's checkpoint {b64(cp.root)}: the log forked",
                    witness.name, 409, size,
                )
            if size == old:
                raise WitnessRefused(
                    f"witness {witness.name} refused size {cp.size} from its own size {size} (409)",
                    witness.name, 409, size,
                )
            old = size
            continue
        raise _refusal(witness, cp, old, resp)
    raise WitnessUnreachable(
        f"witness {witness.name} kept moving; gave up after {MAX_ATTEMPTS} tries"
    )


def _refusal(
    witness: RegisteredWitness, cp: Checkpoint, old: int, resp: httpx.Response
) -> LedgerError:
    reason = resp.text.strip()[:300]
    if resp.status_code == 422:
        return WitnessRefused(
            f"witness {witness.name} rejected the consistency proof from its size {old} to "
            f"{cp.size} (422): the log does not extend the tree the witness cosigned: {reason}",
            witness.name, 422, old,
        )
    if resp.status_code in (403, 404, 400):
        return WitnessRefused(
            f"witness {witness.name} refused size {cp.size} ({resp.status_code}): {reason}",
            witness.name, resp.status_code, None,
        )
    return WitnessUnreachable(f"witness {witness.name} answered {resp.status_code}: {reason}")


@dataclass(frozen=True)
class Refusal:
    """One line of ``witness-refusals.jsonl``."""

    at: str
    witness: str
    url: str | None
    status: int | None
    witness_size: int | None
    log_size: int
    log_root: str
    message: str


def refusals_path(log_: Log) -> Path:
    return log_.config.ledger_dir / "witness-refusals.jsonl"


def record_refusal(log_: Log, refusal: Refusal) -> None:
    path = refusals_path(log_)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(asdict(refusal), ensure_ascii=False, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_refusals(log_: Log) -> list[Refusal]:
    try:
        lines = refusals_path(log_).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    return [Refusal(**json.loads(line)) for line in lines if line]


class WitnessPusher:
    """Offers the log's newest checkpoint to every registered witness with a URL.

    ``push_once()`` does one round (the CLI's ``witness push``); ``start()`` runs rounds in a
    background thread every `interval` seconds, or sooner after ``poke()``. After a failure a
    witness is retried with exponential backoff up to `max_backoff` seconds; a refusal is
    recorded once per distinct answer, not once per retry.
    """

    def __init__(
        self, log_: Log, interval: float = 1.0, timeout: float = 10.0, max_backoff: float = 300.0
    ):
        self.log = log_
        self.interval = interval
        self.max_backoff = max_backoff
        self.http = httpx.Client(timeout=timeout, trust_env=False)
        self._sizes: dict[str, int] = {}  # witness name → size it cosigned for us
        self._failures: dict[str, int] = {}
        self._retry_at: dict[str, float] = {}
        self._last_refusal: dict[str, tuple] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- one round -----------------------------------------------------------------------

    def push_once(self, force: bool = False) -> list[PushResult]:
        note = self.log.store.latest_checkpoint()
        if note is None:
            return []
        cp = parse_checkpoint(split_note(note)[0])
        results = []
        for witness in registered_witnesses(self.log):
            if witness.url is None:
                continue
            if not force and time.monotonic() < self._retry_at.get(witness.name, 0.0):
                continue
            results.append(self._push_one(witness, cp, note))
        return results

    def _known_size(self, name: str) -> int:
        if name not in self._sizes:
            cosigned = {w: s for s, w, _ in self.log.store.latest_cosigned()}
            self._sizes[name] = cosigned.get(name, 0)
        return self._sizes[name]

    def _push_one(self, witness: RegisteredWitness, cp: Checkpoint, note: bytes) -> PushResult:
        old = self._known_size(witness.name)
        if old == cp.size:  # the log holds this witness's cosignature of this checkpoint
            return PushResult(witness.name, cp.size, "up-to-date")
        try:
            size, _ = push_checkpoint(self.log, witness, note, self.http, old)
        except WitnessRefused as e:
            self._failed(witness.name)
            self._refused(witness, cp, e)
            return PushResult(witness.name, cp.size, "refused", str(e))
        except (WitnessUnreachable, LedgerError) as e:
            self._failed(witness.name)
            log.warning("witness %s: %s", witness.name, e)
            return PushResult(witness.name, cp.size, "unreachable", str(e))
        self._sizes[witness.name] = size
        self._failures.pop(witness.name, None)
        self._retry_at.pop(witness.name, None)
        self._last_refusal.pop(witness.name, None)
        log.info("witness %s cosigned size %d", witness.name, size)
        return PushResult(witness.name, size, "cosigned")

    def _failed(self, name: str) -> None:
        n = self._failures.get(name, 0) + 1
        self._failures[name] = n
        self._retry_at[name] = time.monotonic() + min(self.max_backoff, self.interval * 2**n)
        self._sizes.pop(name, None)  # ask the witness again next time

    def _refused(self, witness: RegisteredWitness, cp: Checkpoint, e: WitnessRefused) -> None:
        log.error("witness %s refused checkpoint %d: %s", witness.name, cp.size, e)
        key = (e.status, e.witness_size, cp.size, b64(cp.root))
        if self._last_refusal.get(witness.name) == key:
            return
        self._last_refusal[witness.name] = key
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        record_refusal(
            self.log,
            Refusal(at, witness.name, witness.url, e.status, e.witness_size, cp.size,
                    b64(cp.root), str(e)),
        )

    # --- background thread ---------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="witness-pusher", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        """Push soon (e.g. after a new checkpoint) instead of waiting for the interval."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.http.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.push_once()
            except Exception:  # noqa: BLE001 - the thread must survive a bad round
                log.exception("witness push round failed")
            self._wake.wait(self.interval)
            self._wake.clear()
