"""C2SP tlog-checkpoint: the signed head of the log.

    <origin>\\n
    <tree size, ASCII decimal, no leading zeros>\\n
    <base64 RFC 6962 root hash>\\n
    [extension lines\\n]

The checkpoint is the text of a signed note whose log signature uses the key named as the origin.
Parsing is strict on the first three lines and keeps extension lines (forward-compatible).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from ledger.exceptions import FormatError, SignatureError
from ledger.hashing import HASH_SIZE
from ledger.note import (
    Note,
    Signer,
    Verifier,
    b64,
    open_note,
    sign_note,
    unb64,
)


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise FormatError("checkpoint origin must be one non-empty line")
        if self.size < 0:
            raise FormatError(f"checkpoint size {self.size} is negative")
        if len(self.root) != HASH_SIZE:
            raise FormatError(f"checkpoint root is {len(self.root)} bytes, not {HASH_SIZE}")


def format_checkpoint(cp: Checkpoint) -> str:
    ext = "".join(f"{line}\n" for line in cp.extensions)
    return f"{cp.origin}\n{cp.size}\n{b64(cp.root)}\n{ext}"


def parse_checkpoint(text: str) -> Checkpoint:
    if not text.endswith("\n"):
        raise FormatError("checkpoint text must end in a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise FormatError(f"checkpoint has {len(lines)} lines, needs origin, size and root")
    origin, size, root, *ext = lines
    if not origin:
        raise FormatError("checkpoint origin is empty")
    if not size.isascii() or not size.isdigit() or (size != "0" and size.startswith("0")):
        raise FormatError(f"checkpoint size {size!r} is not a decimal without leading zeros")
    if any(not line for line in ext):
        raise FormatError("checkpoint has an empty extension line")
    raw = unb64(root, "checkpoint root")
    return Checkpoint(origin, int(size), raw, tuple(ext))


def sign_checkpoint(cp: Checkpoint, signer: Signer) -> bytes:
    """Sign a checkpoint as a note. The key name must be the origin (C2SP: SHOULD)."""
    if signer.name != cp.origin:
        raise FormatError(f"log key {signer.name!r} does not match origin {cp.origin!r}")
    return sign_note(format_checkpoint(cp), signer)


def open_checkpoint(
    msg: bytes, log_verifier: Verifier, witnesses: Iterable[Verifier] = ()
) -> tuple[Checkpoint, Note]:
    """Verify the log's signature (required) and any known cosignatures of a checkpoint note."""
    note = open_note(msg, [log_verifier, *witnesses])
    if not any(s.name == log_verifier.name and s.key_id == log_verifier.key_id for s in note.sigs):
        raise SignatureError(
            f"checkpoint is not signed by the log key {log_verifier.name}",
            log_verifier.name,
            log_verifier.key_id,
        )
    cp = parse_checkpoint(note.text)
    if cp.origin != log_verifier.name:
        raise FormatError(f"checkpoint origin {cp.origin!r} is not the log {log_verifier.name!r}")
    return cp, note
