"""Pull mode for a regulator who runs no witness server: fetch, check, cosign, hand back.

The witness fetches the log's latest checkpoint and a consistency proof from the size it last
cosigned, runs exactly the checks of ``add-checkpoint`` (:meth:`ledger.witness.Witness.cosign`),
and gives the cosignature to the log:

- from a data directory (``--data-dir``): read through :class:`ledger.log.Log` and store the
  cosignature with ``SqlLedgerStore.add_cosignature``;
- from the ledger service (``--url``): the checkpoint from ``<url>/checkpoint`` and the proof
  computed from the log's C2SP tlog-tiles (``<url>/tile/…``), which any tlog-tiles log or mirror
  serves; the cosigned checkpoint is then posted to ``<url>/api/v1/cosignatures``, where the log
  keeps it only if the witness is registered and the cosignature verifies
  (:func:`ledger.witness_client.accept_cosigned_checkpoint`).

Nothing here trusts the log: the checkpoint must carry a valid signature by a key the witness
trusts, and the proof is verified against the checkpoint the witness cosigned before.
"""

from __future__ import annotations

from typing import Callable, Sequence

import httpx

from ledger.checkpoint import Checkpoint, parse_checkpoint
from ledger.exceptions import LedgerError, ProofError
from ledger.hashing import root_of_leaf_hashes
from ledger.log import Log
from ledger.note import split_note
from ledger.proofs import Coord, prove_consistency
from ledger.tiles import TILE_HEIGHT, TILE_WIDTH, Tile, parse_hash_tile
from ledger.witness import StaleOldSize, Witness

MAX_ATTEMPTS = 3  # the witness server may cosign a newer checkpoint between our read and check


def cosign_latest(
    witness: Witness, note: bytes, consistency_proof: Callable[[int, int], Sequence[bytes]]
) -> tuple[Checkpoint, str]:
    """Cosign `note` (the log's latest checkpoint) from the size the witness last cosigned.

    `consistency_proof(old, new)` fetches the proof from the log. Returns the checkpoint and
    the cosignature line; raises WitnessRefusal when the checkpoint must not be cosigned.
    """
    cp = parse_checkpoint(split_note(note)[0])
    for attempt in range(MAX_ATTEMPTS):
        state = witness.latest(cp.origin)
        old = state.checkpoint.size if state else 0
        if old > cp.size:
            raise LedgerError(
                f"this witness cosigned size {old} of {cp.origin}, but the log now offers size "
                f"{cp.size}: the log was truncated or rolled back"
            )
        proof = [] if old in (0, cp.size) else list(consistency_proof(old, cp.size))
        try:
            return cp, witness.cosign(old, proof, note)
        except StaleOldSize:
            if attempt == MAX_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def cosign_from_log(witness: Witness, log_: Log) -> tuple[Checkpoint, str]:
    """Cosign the latest checkpoint of a log in a local data directory and store it there."""
    from ledger.witness_client import store_cosignatures

    note = log_.store.latest_checkpoint()
    if note is None:
        raise LedgerError("the log has signed no checkpoint yet")
    cp, line = cosign_latest(witness, note, log_.store.consistency_proof)
    if witness.name not in {name for name, _, _ in log_.store.witnesses()}:
        log_.store.add_witness(witness.name, witness.vkey(), None)
    store_cosignatures(log_, cp.size, [line])
    return cp, line


# --- from the ledger service, over tlog-tiles ---------------------------------------------------


class TileHashReader:
    """A HashReader for the tree of `size` leaves of a tlog-tiles log, fetched with `fetch(path)`.

    A stored hash at Merkle level l is hash i of tile level l // 8 when l is a multiple of 8;
    otherwise it is the root of the 2**(l % 8) consecutive hashes below it in that tile. A
    partial tile that is no longer served is read from the full tile that replaced it.
    """

    def __init__(self, fetch: Callable[[str], bytes | None], size: int):
        self.fetch = fetch
        self.size = size
        self._tiles: dict[tuple[int, int], list[bytes]] = {}

    def read_hashes(self, coords: Sequence[Coord]) -> list[bytes]:
        return [self._hash(level, n) for level, n in coords]

    def _hash(self, level: int, n: int) -> bytes:
        tile_level, rise = divmod(level, TILE_HEIGHT)
        first, count = n << rise, 1 << rise
        available = self.size >> (TILE_HEIGHT * tile_level)
        if first + count > available:
            raise ProofError(f"subtree ({level}, {n}) is not complete in a tree of {self.size}")
        tile_n, offset = divmod(first, TILE_WIDTH)
        hashes = self._tile(tile_level, tile_n, min(TILE_WIDTH, available - tile_n * TILE_WIDTH))
        return root_of_leaf_hashes(hashes[offset : offset + count])

    def _tile(self, level: int, n: int, width: int) -> list[bytes]:
        if (level, n) not in self._tiles:
            data = self.fetch(Tile(level, n, width).path)
            if data is None and width < TILE_WIDTH:
                data = self.fetch(Tile(level, n).path)
                width = TILE_WIDTH
            if data is None:
                raise ProofError(f"the log does not serve {Tile(level, n, width).path}")
            self._tiles[(level, n)] = parse_hash_tile(data, width)
        return self._tiles[(level, n)]


class CosignatureNotDelivered(LedgerError):
    """The witness cosigned, but the ledger service did not take the cosignature."""

    def __init__(self, message: str, line: str):
        super().__init__(message)
        self.line = line


def cosign_from_url(witness: Witness, url: str, timeout: float = 30.0) -> tuple[Checkpoint, str]:
    """Cosign the latest checkpoint of the ledger service at `url` and post it back."""
    base = url.rstrip("/")
    with httpx.Client(timeout=timeout, trust_env=False) as http:

        def fetch(path: str) -> bytes | None:
            try:
                resp = http.get(f"{base}/{path}")
            except httpx.HTTPError as e:
                raise LedgerError(f"cannot fetch {base}/{path}: {e}") from e
            if resp.status_code == 404:
                return None
            if resp.status_code != 200:
                raise LedgerError(f"{base}/{path} answered {resp.status_code}")
            return resp.content

        note = fetch("checkpoint")
        if note is None:
            raise LedgerError(f"{base}/checkpoint not found: is this a ledger service URL?")
        cp, line = cosign_latest(
            witness, note, lambda old, new: prove_consistency(old, new, TileHashReader(fetch, new))
        )
        text = split_note(note)[0]
        log_sigs = [s.line for s in split_note(note)[1] if s.name == cp.origin]
        cosigned = (text + "\n" + "".join(log_sigs) + line).encode()
        try:
            resp = http.post(f"{base}/api/v1/cosignatures", content=cosigned)
        except httpx.HTTPError as e:
            raise CosignatureNotDelivered(f"could not give the cosignature to {base}: {e}", line)
        if resp.status_code != 200:
            raise CosignatureNotDelivered(
                f"{base} did not take the cosignature ({resp.status_code}): {resp.text[:200]}", line
            )
    return cp, line
