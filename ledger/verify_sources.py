"""Where `ledger.verify` reads a log: its SQL database, or tlog-tiles in a directory or at a URL.

A `SourceSpec` names the place in a picklable way, so that worker processes can open it again;
its `open()` gives a `ChunkSource` that reads entries and stored hashes by position (None where
something is missing). The `open_*` functions read everything else a verification needs from the
place (the latest checkpoint, the claims and cosigned notes to check, the stored hashes above the
chunk level) into a `LogUnderTest`, checking the latest checkpoint's signature first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.exceptions import FormatError, LedgerError, SignatureError, VerificationError
from ledger.note import Ed25519Verifier, parse_vkey, split_note
from ledger.tiles import TILE_HEIGHT
from ledger.verify import CHUNK_LEVEL, Claim, Finding, LogUnderTest

if TYPE_CHECKING:
    from ledger.log import Log


# --- reading by position ---------------------------------------------------------------------


@dataclass(frozen=True)
class SourceSpec:
    """A picklable description of where the log is, so worker processes can open it too."""

    kind: str  # "sql", "dir" or "url"
    location: str  # database URL, directory, or base URL
    size: int  # tree size under verification
    vkey: str  # the log's verifier key
    chunk_level: int = CHUNK_LEVEL  # chunks of 2**chunk_level leaves (smaller only in tests)
    token: str | None = field(default=None, repr=False)  # hub token for a ledger service URL

    def open(self) -> "ChunkSource":
        if self.kind == "sql":
            return SqlChunkSource(self.location)
        from ledger.mirror import DirFetcher, HttpFetcher, TiledLog

        fetcher = (
            DirFetcher(Path(self.location)) if self.kind == "dir"
            else HttpFetcher(self.location, token=self.token)
        )
        return TilesChunkSource(TiledLog(fetcher, self.size))


class ChunkSource:
    """Reads entries and stored hashes by position. Missing items are None."""

    kind = "?"

    def read(self, start: int, end: int) -> tuple[list[bytes | None], list[bytes | None] | None]:
        """Entry bytes and stored leaf hashes (None: the source keeps no separate leaf hashes)."""
        raise NotImplementedError

    def stored(self, level: int, start: int, end: int) -> list[bytes | None] | None:
        """Stored hashes of Merkle level `level`, positions [start, end); None: not stored."""
        raise NotImplementedError

    def stored_checkpoints(self, lo: int, hi: int) -> list[tuple[int, bytes, str]]:
        """(size, root column, note) of checkpoints the source keeps with lo < size ≤ hi."""
        return []

    def close(self) -> None:
        pass


def _positional(rows: list[tuple], start: int, end: int, col: int) -> list:
    n = end - start
    if len(rows) == n and (n == 0 or (rows[0][0] == start and rows[-1][0] == end - 1)):
        return [r[col] for r in rows]
    out: list = [None] * n
    for r in rows:
        if start <= r[0] < end:
            out[r[0] - start] = r[col]
    return out


class SqlChunkSource(ChunkSource):
    kind = "sql"

    def __init__(self, url: str):
        from ledger.sqlstore import make_engines

        writer, self.engine = make_engines(url)
        if writer is not self.engine:
            writer.dispose()

    def read(self, start: int, end: int) -> tuple[list[bytes | None], list[bytes | None]]:
        from ledger.sqlreads import entry_pairs, entry_rows

        pairs = entry_pairs(self.engine, start, end)
        if len(pairs) == end - start:  # every index present (it is the primary key)
            return [p[0] for p in pairs], [p[1] for p in pairs]
        rows = entry_rows(self.engine, start, end)
        return _positional(rows, start, end, 1), _positional(rows, start, end, 2)

    def stored(self, level: int, start: int, end: int) -> list[bytes | None] | None:
        from ledger.sqlreads import node_hash_list, node_hashes
        from ledger.sqlstore import stores_level

        if not stores_level(level):
            return None  # derived from the leaf hashes, which are checked
        hashes = node_hash_list(self.engine, level, start, end)
        if len(hashes) == end - start:
            return hashes  # type: ignore[return-value]
        return _positional(node_hashes(self.engine, level, start, end), start, end, 1)

    def stored_checkpoints(self, lo: int, hi: int) -> list[tuple[int, bytes, str]]:
        from ledger.sqlreads import checkpoint_rows

        return [(s, r, n) for s, r, n, _ in checkpoint_rows(self.engine, lo + 1, hi)]

    def close(self) -> None:
        self.engine.dispose()


class TilesChunkSource(ChunkSource):
    kind = "tiles"

    def __init__(self, tiled):  # type: ignore[no-untyped-def]
        self.tiled = tiled

    def read(self, start: int, end: int) -> tuple[list[bytes | None], list[bytes | None]]:
        return self.tiled.read(-1, start, end), self.tiled.read(0, start, end)

    def stored(self, level: int, start: int, end: int) -> list[bytes | None] | None:
        if level % TILE_HEIGHT:
            return None
        return self.tiled.read(level // TILE_HEIGHT, start, end)

    def close(self) -> None:
        close = getattr(self.tiled.fetcher, "close", None)
        if close:
            close()


# --- opening each kind of source ----------------------------------------------------------------


def load_text_or_file(value: str) -> str:
    """A vkey or note given inline, or the path of a file holding it."""
    if "\n" not in value:
        path = Path(value)
        try:
            if path.is_file():
                return path.read_text()
        except OSError as e:
            raise LedgerError(f"cannot read {value}: {e}") from None
    return value


def parse_key(value: str, what: str) -> Ed25519Verifier:
    """A verifier key given inline or as a file path (``--vkey``, ``--witness-vkey``)."""
    try:
        return parse_vkey(load_text_or_file(value).strip())
    except FormatError as e:
        raise LedgerError(
            f"{what} {value[:80]!r} is neither a file nor a valid vkey: {e}"
        ) from None


def _open_latest(note: bytes, verifier: Ed25519Verifier, where: str) -> Checkpoint:
    try:
        cp, _ = open_checkpoint(note, verifier)
    except SignatureError as e:
        raise VerificationError(
            f"the checkpoint from {where} is not signed by {verifier.name} "
            f"({verifier.key_id:08x}): {e}"
        ) from None
    except FormatError as e:
        raise VerificationError(f"the checkpoint from {where} is malformed: {e}") from None
    return cp


def seen_claims(
    values: Sequence[str], verifier: Ed25519Verifier
) -> tuple[list[Claim], list[tuple[str, bytes]]]:
    """Claims from ``--since`` checkpoints (each must be signed by the log key)."""
    claims, notes = [], []
    for value in values:
        label = f"--since {value}" if "\n" not in value else "the --since checkpoint"
        note = load_text_or_file(value).encode()
        try:
            cp, _ = open_checkpoint(note, verifier)
        except LedgerError as e:
            raise LedgerError(
                f"{label} is not a checkpoint signed by {verifier.name}: {e}"
            ) from None
        claims.append(Claim(cp.size, cp.root, label, "seen"))
        notes.append((label, note))
    return claims, notes


def open_tiles(
    kind: str,
    location: str,
    verifier: Ed25519Verifier,
    since: Sequence[str],
    witnesses: Sequence[Ed25519Verifier],
    chunk_level: int = CHUNK_LEVEL,
    token: str | None = None,
) -> LogUnderTest:
    """A log published as tlog-tiles in a directory (kind "dir") or at a URL (kind "url";
    `token`: a hub token, needed for the entries of a ledger service run under the hub)."""
    from ledger.mirror import DirFetcher, HttpFetcher, TiledLog

    fetcher = (DirFetcher(Path(location)) if kind == "dir"
               else HttpFetcher(location, token=token))
    try:
        note = fetcher.fetch("checkpoint")
        if note is None:
            raise LedgerError(f"{fetcher.description} has no checkpoint: is it a tlog-tiles log?")
        cp = _open_latest(note, verifier, f"{fetcher.description}/checkpoint")
        tiled = TiledLog(fetcher, cp.size)
        upper_levels: dict[int, list[bytes | None] | None] = {}

        def upper(level: int) -> list[bytes | None] | None:
            if level % TILE_HEIGHT:
                return None
            if level not in upper_levels:
                upper_levels[level] = tiled.read(level // TILE_HEIGHT, 0, cp.size >> level)
            return upper_levels[level]

        for level in range(0, 64, TILE_HEIGHT):  # read now, while the fetcher is open
            if level >= chunk_level and cp.size >> level:
                upper(level)
    finally:
        close = getattr(fetcher, "close", None)
        if close:
            close()
    claims, notes = seen_claims(since, verifier)
    claims.append(Claim(cp.size, cp.root, f"the checkpoint of {fetcher.description}", "log"))
    return LogUnderTest(
        spec=SourceSpec(kind, location, cp.size, verifier.vkey(), chunk_level, token),
        checkpoint=cp,
        note=note,
        description=fetcher.description,
        stored_hashes="every hash tile matches the recomputed tree",
        claims=claims,
        cosigned_notes=[(f"the checkpoint of {fetcher.description}", note), *notes],
        witnesses=list(witnesses),
        upper=upper,
    )


def open_database(
    log: "Log",
    verifier: Ed25519Verifier,
    since: Sequence[str],
    witnesses: Sequence[Ed25519Verifier],
    chunk_level: int = CHUNK_LEVEL,
) -> LogUnderTest:
    """A log in its SQL database (``--data-dir``), with every stored checkpoint and cosignature."""
    from ledger import sqlreads
    from ledger.sqlstore import stores_level

    engine = log.store.reader
    findings: list[Finding] = []
    note = log.store.latest_checkpoint()
    if note is None:
        raise VerificationError("the log has signed no checkpoint yet; nothing to verify")
    cp = _open_latest(note, verifier, "the database")
    claims, notes = seen_claims(since, verifier)
    claims.append(Claim(cp.size, cp.root, "the latest stored checkpoint", "log"))
    claims += guard_claims(log.config.guard_path, verifier, findings)
    known = list(witnesses)
    for name, vkey, _ in sqlreads.witness_rows(engine):
        try:
            known.append(parse_vkey(vkey))
        except FormatError as e:
            findings.append(Finding(f"registered witness {name} has a bad key: {e}"))
    by_size: dict[int, list[str]] = {}
    for size, _, _, line, _ in sqlreads.cosignature_rows(engine, 0, cp.size):
        by_size.setdefault(size, []).append(line)
    texts = sqlreads.checkpoint_notes(engine, sorted(by_size))
    for size, lines in sorted(by_size.items()):
        if size not in texts:
            findings.append(
                Finding(f"cosignatures are stored for size {size}, which the log never signed")
            )
            continue
        text = split_note(texts[size].encode())[0]
        body = "".join(ln if ln.endswith("\n") else ln + "\n" for ln in lines)
        notes.append((f"the stored checkpoint of size {size:,}", (text + "\n" + body).encode()))
    findings += _state_findings(engine, cp)
    upper_levels: dict[int, list[bytes | None] | None] = {}

    def upper(level: int) -> list[bytes | None] | None:
        if not stores_level(level):
            return None
        if level not in upper_levels:
            count = cp.size >> level
            upper_levels[level] = _positional(
                sqlreads.node_hashes(engine, level, 0, count), 0, count, 1
            )
        return upper_levels[level]

    return LogUnderTest(
        spec=SourceSpec("sql", log.config.database_url, cp.size, verifier.vkey(), chunk_level),
        checkpoint=cp,
        note=note,
        description=f"the database of {log.config.ledger_dir}",
        stored_hashes="every stored leaf hash and subtree hash matches the recomputed tree",
        claims=claims,
        cosigned_notes=notes,
        witnesses=known,
        upper=upper,
        findings=findings,
    )


def _state_findings(engine, cp: Checkpoint) -> list[Finding]:  # type: ignore[no-untyped-def]
    from ledger import sqlreads

    out = []
    state = sqlreads.state_row(engine)
    if state is None:
        return [Finding("the ledger_state row is missing")]
    size, root, newest = state
    if size != newest:
        out.append(
            Finding(f"ledger_state says {size:,} entries but the newest checkpoint is {newest:,}")
        )
    elif size == cp.size and root != cp.root:
        out.append(Finding("ledger_state holds a root that differs from the signed checkpoint"))
    extra = sqlreads.first_unsigned_entry(engine)
    if extra is not None:
        out.append(
            Finding(f"entry {extra} is stored but no signed checkpoint covers it", extra, extra + 1)
        )
    return out


def guard_claims(path: Path, verifier: Ed25519Verifier, findings: list[Finding]) -> list[Claim]:
    """The log's own record of the last checkpoint it signed (both slots of the guard file)."""
    claims = []
    for slot in (path, path.with_name(path.name + ".alt")):
        try:
            note = slot.read_bytes()
        except FileNotFoundError:
            continue
        try:
            cp, _ = open_checkpoint(note, verifier)
        except SignatureError as e:
            findings.append(Finding(f"{slot} holds a checkpoint not signed by the log key: {e}"))
            continue
        except (FormatError, ValueError):
            continue  # a slot torn by a crash; the other slot holds the previous head
        claims.append(Claim(cp.size, cp.root, f"the log's last-signed record {slot.name}", "seen"))
    return claims
