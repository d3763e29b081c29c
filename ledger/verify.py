"""`shuyu ledger verify`: recompute a whole log from its entries and check everything against it.

What is checked, for a log read from its SQL database (``--data-dir``) or from its C2SP tlog-tiles
(``--from DIR``, an export; ``--url URL``, the ledger service or any mirror):

1. the latest checkpoint is signed by the log key (``--vkey``);
2. every entry is re-hashed from its stored bytes, and the whole tree is recomputed from those
   leaf hashes, level by level; every stored hash is compared with the recomputed one (the SQL
   leaf hashes and every ``ledger_nodes`` row; or every hash tile);
3. every *claim* about the tree is compared with the recomputed root of its prefix: the latest
   checkpoint, every stored checkpoint (``--data-dir``: signature, root column and root), every
   ``--since`` checkpoint seen earlier, and the log's own last-signed record (the guard file);
   a claim larger than the log means truncation or rollback, a claim whose root differs from
   the prefix means the history was rewritten, and two signed roots for one size are a fork;
4. every cosignature by a known witness (``ledger_witnesses`` rows and ``--witness-vkey``).

The first problem found is reported with the index of the first bad entry: exactly when the
evidence pins one entry (bytes that no longer match their leaf hash, a missing row), otherwise the
smallest range of entries the evidence allows (a stored subtree hash, or the gap between the last
matching and the first failing checkpoint).

Speed: the tree is processed in aligned chunks of 2**16 leaves. A chunk is hashed level by level
with list comprehensions and compared with its stored hashes level by level; the chunk's root
then joins a compact range of chunk roots, which gives the levels above 16 and, with the chunk's
own levels, the root of any prefix that ends inside the chunk. Chunks are independent, so large
logs are spread over worker processes (one per core); memory stays bounded by the chunk size.

Where the entries and stored hashes come from (SQL, a directory, a URL) is `ledger.verify_sources`.
Worker processes are started with "spawn": a program that calls `run_verification` must keep its
main module import-safe (``if __name__ == "__main__":``), as for any multiprocessing code.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from hashlib import sha256
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence

from ledger.checkpoint import Checkpoint, parse_checkpoint
from ledger.exceptions import FormatError, LedgerError, SignatureError, VerificationError
from ledger.hashing import EMPTY_ROOT
from ledger.note import (
    ALG_COSIGNATURE_V1,
    Ed25519Verifier,
    b64,
    parse_signature_line,
    parse_vkey,
    split_note,
)
from ledger.proofs import fold
from ledger.tree import CompactRange, right_edge_coords

if TYPE_CHECKING:  # the sources import this module; workers get them by pickling a SourceSpec
    from ledger.verify_sources import ChunkSource, SourceSpec

CHUNK_LEVEL = 16
MIN_PARALLEL_CHUNKS = 3  # below this, worker start-up costs more than it saves
_MISSING = sha256(b"shuyu verify: no entry stored at this index").digest()

ProgressFn = Callable[[int, int], None]  # (entries done, entries total)


# --- what can go wrong --------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One problem. [start, end) are the entries the evidence implicates (None: not an entry)."""

    message: str
    start: int | None = None
    end: int | None = None

    def order(self) -> tuple[int, int]:
        """Earliest end first (that range surely holds a bad entry), then the narrowest."""
        if self.start is None:
            return (1 << 63, 1 << 63)
        end = self.end if self.end is not None else self.start + 1
        return (end, end - self.start)

    def describe(self) -> str:
        if self.start is None:
            return self.message
        if self.end is None or self.end - self.start <= 1:
            return f"first bad entry: {self.start}: {self.message}"
        return f"first bad entry in [{self.start}, {self.end}): {self.message}"


def _first_difference(a: Sequence, b: Sequence) -> int:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


# --- one chunk ----------------------------------------------------------------------------------


@dataclass
class StoredClaim:
    size: int
    root: bytes | None  # the signed root (None when the note did not verify)
    edge: list[bytes]
    problem: str | None = None


@dataclass
class ChunkResult:
    start: int
    end: int
    root: bytes | None  # the level-16 hash, when the chunk is complete
    edges: dict[int, list[bytes]] = field(default_factory=dict)  # claim size → lower edge
    stored_claims: list[StoredClaim] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def _levels(data: list[bytes | None]) -> list[list[bytes]]:
    """Level 0 (leaf hashes) up to the highest complete level within the chunk."""
    if None in data:
        leaves = [_MISSING if d is None else sha256(b"\x00" + d).digest() for d in data]
    else:
        leaves = [sha256(b"\x00" + d).digest() for d in data]  # type: ignore[operator]
    levels = [leaves]
    cur = leaves
    while len(cur) >= 2:
        cur = [sha256(b"\x01" + a + b).digest() for a, b in zip(cur[0::2], cur[1::2])]
        levels.append(cur)
    return levels


def _lower_edge(levels: list[list[bytes]], rel: int) -> list[bytes]:
    """Hashes of the right edge of [0, rel) inside the chunk (rel ≤ the chunk size)."""
    return [levels[level][n] for level, n in right_edge_coords(rel)]


def check_chunk(
    source: "ChunkSource", spec: "SourceSpec", start: int, end: int, claim_sizes: Sequence[int]
) -> ChunkResult:
    """Re-hash entries [start, end), compare the stored hashes inside the chunk (levels below
    the chunk level), prepare the roots of the claimed prefixes that end in the chunk."""
    top = spec.chunk_level
    data, stored0 = source.read(start, end)
    levels = _levels(data)
    findings: list[Finding] = []
    missing = [i for i, d in enumerate(data) if d is None]
    if missing:
        i = start + missing[0]
        findings.append(Finding(f"entry {i} is missing from the log", i, i + 1))
    if stored0 is not None and stored0 != levels[0]:
        i = _first_difference(levels[0], stored0)
        if data[i] is not None:
            idx = start + i
            what = "is missing" if stored0[i] is None else f"is {b64(stored0[i])}"  # type: ignore[arg-type]
            findings.append(
                Finding(
                    f"entry {idx} was altered: its stored bytes hash to {b64(levels[0][i])} but "
                    f"its stored leaf hash {what}",
                    idx,
                    idx + 1,
                )
            )
    for level in range(1, min(len(levels), top)):
        computed = levels[level]
        first = start >> level
        stored = source.stored(level, first, first + len(computed))
        if stored is None or stored == computed:
            continue
        i = _first_difference(computed, stored)
        lo, hi = (first + i) << level, (first + i + 1) << level
        state = "is missing" if i >= len(stored) or stored[i] is None else "differs"
        findings.append(
            Finding(
                f"entries {lo}..{hi - 1} do not hash to the stored hash of their subtree "
                f"(level {level}, {first + i}), which {state}: one of them was altered, "
                "removed or reordered, or the stored hash was",
                lo,
                hi,
            )
        )
    result = ChunkResult(start, end, levels[top][0] if len(levels) > top else None)
    result.findings = findings
    for size in claim_sizes:
        result.edges[size] = _lower_edge(levels, size - start)
    verifier = parse_vkey(spec.vkey)
    for size, root_col, note in source.stored_checkpoints(start, end):
        claim = StoredClaim(size, None, _lower_edge(levels, size - start))
        try:
            cp = open_log_signed(note, verifier)
            claim.root = cp.root
            if cp.size != size:
                claim.problem = (
                    f"the stored checkpoint row of size {size} holds a note of size {cp.size}"
                )
            elif cp.root != root_col:
                claim.problem = (
                    f"the stored checkpoint row of size {size}: its root column differs from "
                    "its signed note"
                )
        except LedgerError as e:
            claim.problem = f"the stored checkpoint of size {size} does not verify: {e}"
        result.stored_claims.append(claim)
    return result


def open_log_signed(note: str, verifier: Ed25519Verifier) -> Checkpoint:
    """The checkpoint of a stored note, if the log key's signature on it verifies.

    The lean path for the thousands of stored checkpoints of a big log: the signature line is
    found by key name and ID and checked over the exact text, and the text is parsed strictly.
    (Full note-format checks add nothing here: a valid signature means the log wrote the text.)
    """
    cut = note.rfind("\n\n")
    if cut < 0:
        raise FormatError("stored checkpoint note has no signature block")
    text = note[: cut + 1]
    for line in note[cut + 2 :].splitlines():
        sig = parse_signature_line(line)
        if sig.name == verifier.name and sig.key_id == verifier.key_id:
            if not verifier.verify(text, sig.raw):
                raise SignatureError(f"invalid signature by {sig.name}", sig.name, sig.key_id)
            cp = parse_checkpoint(text)
            if cp.origin != verifier.name:
                raise FormatError(
                    f"checkpoint origin {cp.origin!r} is not the log {verifier.name!r}"
                )
            return cp
    raise SignatureError(
        f"not signed by the log key {verifier.name}", verifier.name, verifier.key_id
    )


_worker: "tuple[ChunkSource, SourceSpec] | None" = None


def _init_worker(spec: "SourceSpec") -> None:
    global _worker
    _worker = (spec.open(), spec)


def _worker_chunk(task: tuple[int, int, tuple[int, ...]]) -> ChunkResult:
    assert _worker is not None
    return check_chunk(_worker[0], _worker[1], *task)


def _chunk_results(
    spec: "SourceSpec", tasks: list[tuple[int, int, tuple[int, ...]]], jobs: int
) -> Iterator[ChunkResult]:
    if jobs <= 1 or len(tasks) < MIN_PARALLEL_CHUNKS:
        source = spec.open()
        try:
            for task in tasks:
                yield check_chunk(source, spec, *task)
        finally:
            source.close()
        return
    ctx = multiprocessing.get_context("spawn")  # no fork of a process holding threads and sockets
    pool = ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker, initargs=(spec,))
    try:
        yield from pool.map(_worker_chunk, tasks)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# --- claims about the tree ----------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """A signed statement "the tree of `size` entries has `root`", and where it came from."""

    size: int
    root: bytes
    label: str
    kind: str  # "log": the log's own checkpoints; "seen": checkpoints held elsewhere


@dataclass
class VerifyReport:
    origin: str
    source: str
    size: int
    root: bytes
    stored_hashes: str
    checkpoints_checked: int = 0
    seen: list[str] = field(default_factory=list)
    cosigned: dict[str, tuple[int, int]] = field(default_factory=dict)  # witness → (size, time)
    unknown_cosignatures: int = 0
    jobs: int = 1
    seconds: float = 0.0

    def summary(self) -> str:
        lines = [
            f"OK: log {self.origin} verified from {self.source}",
            f"  entries       {self.size:,} re-hashed; tree recomputed; root {b64(self.root)}",
            f"  stored hashes {self.stored_hashes}",
            f"  checkpoints   {self.checkpoints_checked:,} signed tree head(s) match the "
            "recomputed prefix roots",
        ]
        for label in self.seen:
            lines.append(f"  consistent    with {label}")
        for name, (size, at) in sorted(self.cosigned.items()):
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
            lines.append(f"  cosigned      by {name} up to size {size:,} at {when}")
        if self.unknown_cosignatures:
            lines.append(
                f"  not checked   {self.unknown_cosignatures} cosignature(s) by unknown keys "
                "(add --witness-vkey)"
            )
        lines.append(f"  took          {self.seconds:.2f} s ({self.jobs} process(es))")
        return "\n".join(lines) + "\n"


# --- the whole log ------------------------------------------------------------------------------


@dataclass
class LogUnderTest:
    """Everything `verify_tree` needs besides the entries: built by the source-specific openers."""

    spec: "SourceSpec"
    checkpoint: Checkpoint
    note: bytes
    description: str
    stored_hashes: str
    claims: list[Claim]
    cosigned_notes: list[tuple[str, bytes]]  # (label, cosigned checkpoint note) to check
    witnesses: list[Ed25519Verifier]
    upper: Callable[[int], list[bytes | None] | None]  # stored hashes of a level ≥ 16
    findings: list[Finding] = field(default_factory=list)  # found before the tree pass


def _claim_finding(claim: Claim, computed: bytes, last_good: int, others: list[Claim]) -> Finding:
    fork = [c for c in others if c.size == claim.size and c.root != claim.root]
    msg = (
        f"the first {claim.size:,} entries do not hash to the root signed in {claim.label} "
        f"({b64(claim.root)}; recomputed {b64(computed)}): an entry was altered, removed or "
        "reordered, or history was rewritten"
    )
    if fork:
        msg += (
            f"; the log key also signed a different tree of size {claim.size:,} in "
            f"{fork[0].label}: a fork (two different trees signed for the same size)"
        )
    return Finding(msg, last_good, claim.size)


def verify_tree(
    lut: LogUnderTest, jobs: int | None = None, progress: ProgressFn | None = None
) -> tuple[int, int]:
    """Recompute the tree and check it against stored hashes and claims.

    Returns (checkpoints checked, jobs used); raises VerificationError on the first problem.
    """
    n = lut.checkpoint.size
    findings = list(lut.findings)
    claims = sorted(lut.claims, key=lambda c: c.size)
    for c in claims:
        if c.size > n:
            findings.append(
                Finding(
                    f"{c.label} signed a tree of {c.size:,} entries but the log has {n:,}: "
                    f"entries {n}..{c.size - 1} are gone (the log was truncated or rolled back)",
                    n,
                    c.size,
                )
            )
    claims = [c for c in claims if c.size <= n]
    for c in claims:
        if c.size == 0 and c.root != EMPTY_ROOT:
            findings.append(Finding(f"{c.label} signs a wrong root for the empty tree"))
    claims = [c for c in claims if c.size > 0]
    tasks = []
    chunk = 1 << lut.spec.chunk_level
    for start in range(0, n, chunk):
        end = min(n, start + chunk)
        tasks.append((start, end, tuple(sorted({c.size for c in claims if start < c.size <= end}))))
    jobs = jobs if jobs is not None else min(os.cpu_count() or 1, len(tasks))
    jobs = max(1, min(jobs, len(tasks))) if len(tasks) >= MIN_PARALLEL_CHUNKS else 1
    upper = CompactRange()
    upper_stored: dict[int, list[bytes | None] | None] = {}
    last_good = {"log": 0, "seen": 0}
    checked: set[tuple[int, bytes]] = set()
    for result in _chunk_results(lut.spec, tasks, jobs):
        chunk_findings = list(result.findings)
        edge = list(upper.edge)
        here = [c for c in claims if result.start < c.size <= result.end]
        for sc in result.stored_claims:
            if sc.problem or sc.root is None:
                chunk_findings.append(Finding(sc.problem or "bad stored checkpoint"))
                continue
            here.append(
                Claim(sc.size, sc.root, f"the stored checkpoint of size {sc.size:,}", "log")
            )
            result.edges[sc.size] = sc.edge
        for claim in sorted(here, key=lambda c: c.size):
            computed = fold(edge + result.edges[claim.size])
            if computed == claim.root:
                last_good[claim.kind] = max(last_good[claim.kind], claim.size)
                checked.add((claim.size, claim.root))
            else:
                chunk_findings.append(_claim_finding(claim, computed, last_good[claim.kind], here))
        if result.root is not None:
            chunk_findings += _check_upper(lut, upper, result, upper_stored)
        if progress:
            progress(result.end, n)
        if chunk_findings:
            _raise(findings + chunk_findings)
    if findings:
        _raise(findings)
    return len(checked), jobs


def _check_upper(
    lut: LogUnderTest,
    upper: CompactRange,
    result: ChunkResult,
    cache: dict[int, list[bytes | None] | None],
) -> list[Finding]:
    """Add a chunk root to the range of chunk roots; compare every hash it completes."""
    out = []
    for rise, k, h in upper.append(result.root):  # type: ignore[arg-type]
        level = lut.spec.chunk_level + rise
        if level not in cache:
            cache[level] = lut.upper(level)
        stored = cache[level]
        if stored is None:
            continue
        if k >= len(stored) or stored[k] != h:
            lo, hi = k << level, (k + 1) << level
            out.append(
                Finding(
                    f"entries {lo}..{hi - 1} do not hash to the stored hash of their subtree "
                    f"(level {level}, {k}): one of them was altered, removed or reordered, or "
                    "the stored hash was",
                    lo,
                    hi,
                )
            )
    return out


def _raise(findings: list[Finding]) -> None:
    findings = sorted(findings, key=Finding.order)
    first = findings[0]
    msg = first.describe()
    if len(findings) > 1:
        msg += f" (and {len(findings) - 1} more problem(s))"
    raise VerificationError(msg, first.start)


# --- cosignatures ---------------------------------------------------------------------------


def check_cosignatures(
    notes: Iterable[tuple[str, bytes]], witnesses: Sequence[Ed25519Verifier], report: VerifyReport
) -> list[Finding]:
    """Verify every cosignature line by a known witness key on each (label, note)."""
    known = {(w.name, w.key_id): w for w in witnesses if w.alg == ALG_COSIGNATURE_V1}
    findings = []
    for label, note in notes:
        text, sigs = split_note(note)
        cp = parse_checkpoint(text)
        for sig in sigs:
            if sig.name == cp.origin:
                continue
            w = known.get((sig.name, sig.key_id))
            if w is None:
                report.unknown_cosignatures += 1
                continue
            if not w.verify(text, sig.raw):
                findings.append(
                    Finding(
                        f"the cosignature by {sig.name} on {label} (size {cp.size}) does not verify"
                    )
                )
                continue
            at = int.from_bytes(sig.raw[:8], "big")
            best = report.cosigned.get(sig.name)
            if best is None or (cp.size, at) > best:
                report.cosigned[sig.name] = (cp.size, at)
    return findings


def run_verification(
    lut: LogUnderTest, jobs: int | None = None, progress: ProgressFn | None = None
) -> VerifyReport:
    started = time.perf_counter()
    report = VerifyReport(
        lut.checkpoint.origin,
        lut.description,
        lut.checkpoint.size,
        lut.checkpoint.root,
        lut.stored_hashes,
    )
    lut.findings += check_cosignatures(lut.cosigned_notes, lut.witnesses, report)
    report.checkpoints_checked, report.jobs = verify_tree(lut, jobs, progress)
    report.seen = [
        f"{c.label} (size {c.size:,})"
        for c in sorted(lut.claims, key=lambda c: c.size)
        if c.kind == "seen"
    ]
    report.seconds = time.perf_counter() - started
    return report
