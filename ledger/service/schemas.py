"""Public shapes of the ledger service's JSON API (``/api/v1``).

Hashes and roots are standard base64, as in C2SP checkpoints and proofs; key IDs are 8 hex
digits as in vkeys; times are Unix seconds (UTC) with an RFC 3339 copy for people.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorPublic(BaseModel):
    detail: str = Field(description="What was wrong, for people.")


class WitnessPublic(BaseModel):
    name: str
    vkey: str = Field(description="The witness's cosignature verifier key (algorithm 0x04).")


class LogInfoPublic(BaseModel):
    origin: str = Field(description="The log's origin line and signing key name.")
    vkey: str = Field(description="The log's verifier key (check it against one you trust).")
    tree_size: int = Field(description="Entries covered by the latest signed checkpoint.")
    witnesses: list[WitnessPublic] = Field(description="Witnesses registered with the log.")


class CosignaturePublic(BaseModel):
    witness: str = Field(description="Key name of the cosigner.")
    key_id: str = Field(description="Key ID, 8 hex digits.")
    time: int | None = Field(description="Cosignature time (Unix seconds), from the signature.")
    time_utc: str | None = Field(description="The same time, RFC 3339 UTC.")
    verified: bool = Field(
        description="True when the cosignature verifies with a witness key registered with the log."
    )
    line: str = Field(description="The signature line as it appears in the note.")


class CheckpointPublic(BaseModel):
    origin: str
    size: int = Field(description="Tree size (number of entries).")
    root: str = Field(description="RFC 6962 root hash, base64.")
    signed_at: int | None = Field(description="When the log signed it (Unix seconds).")
    note: str = Field(description="The signed note, with the log signature and cosignatures.")
    cosignatures: list[CosignaturePublic]


class CheckpointPage(BaseModel):
    checkpoints: list[CheckpointPublic] = Field(description="Newest first.")
    next_before: int | None = Field(
        description="Pass as `before` for the next (older) page; null on the last page."
    )


class EntryPublic(BaseModel):
    index: int
    leaf_hash: str = Field(description="SHA-256(0x00 ‖ stored bytes), recomputed on read, base64.")
    entry: dict[str, Any] | None = Field(
        description="The decoded entry; null when the stored bytes are not canonical JSON."
    )
    problem: str | None = Field(
        description="Set when the stored bytes fail an integrity check (the ledger was altered)."
    )


class EntryPage(BaseModel):
    tree_size: int = Field(description="Size of the latest signed checkpoint.")
    start: int
    entries: list[EntryPublic]
    next_start: int | None = Field(description="Start of the next page; null at the end.")


class InclusionProofPublic(BaseModel):
    index: int
    tree_size: int
    leaf_hash: str = Field(description="Leaf hash of the entry, base64.")
    root: str = Field(description="Root of the signed tree, base64.")
    hashes: list[str] = Field(description="RFC 9162 inclusion path, leaf's sibling first, base64.")
    checkpoint: str = Field(description="The signed checkpoint of `tree_size` with cosignatures.")


class ConsistencyProofPublic(BaseModel):
    old_size: int
    new_size: int
    old_root: str = Field(description="Root of the first old_size entries, base64.")
    new_root: str = Field(description="Root of the signed tree of new_size, base64.")
    hashes: list[str] = Field(description="RFC 9162 consistency proof, base64.")
    checkpoint: str = Field(description="The signed checkpoint of `new_size` with cosignatures.")


class CosignaturesAccepted(BaseModel):
    size: int = Field(description="Size of the checkpoint the cosignatures are for.")
    stored: list[str] = Field(description="Cosignature lines the log now keeps.")
