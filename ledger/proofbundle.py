"""C2SP tlog-proof@v1: an offline proof that an entry is in a checkpointed tree.

    c2sp.org/tlog-proof@v1
    [extra <base64>]
    index <n>
    <base64 hash>            zero or more, RFC 6962 PATH, leaf's sibling first
    <empty line>
    <checkpoint note, with its log signature and cosignatures>
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.exceptions import FormatError
from ledger.hashing import HASH_SIZE
from ledger.note import b64, unb64

HEADER = "c2sp.org/tlog-proof@v1"


@dataclass(frozen=True)
class TlogProof:
    index: int
    hashes: list[bytes]
    checkpoint: bytes  # the signed note, verbatim
    extra: bytes | None = None


def format_tlog_proof(
    index: int, hashes: list[bytes], checkpoint: bytes, extra: bytes | None = None
) -> str:
    lines = [HEADER]
    if extra is not None:
        lines.append(f"extra {b64(extra)}")
    lines.append(f"index {index}")
    lines += [b64(h) for h in hashes]
    return "\n".join(lines) + "\n\n" + checkpoint.decode()


def parse_tlog_proof(text: str) -> TlogProof:
    head, sep, checkpoint = text.partition("\n\n")
    if not sep:
        raise FormatError("tlog-proof has no empty line before its checkpoint")
    lines = head.split("\n")
    if lines[0] != HEADER:
        raise FormatError(f"tlog-proof must start with {HEADER!r}")
    pos, extra = 1, None
    if len(lines) > 1 and lines[1].startswith("extra "):
        extra = unb64(lines[1][6:], "tlog-proof extra")
        pos = 2
    if len(lines) <= pos or not lines[pos].startswith("index "):
        raise FormatError("tlog-proof has no index line")
    idx = lines[pos][6:]
    if not (idx.isascii() and idx.isdigit()) or (idx != "0" and idx.startswith("0")):
        raise FormatError(f"tlog-proof index {idx!r} is not a decimal without leading zeros")
    hashes = [unb64(line, "tlog-proof hash") for line in lines[pos + 1 :]]
    if any(len(h) != HASH_SIZE for h in hashes):
        raise FormatError("tlog-proof hash is not 32 bytes")
    return TlogProof(int(idx), hashes, checkpoint.encode(), extra)
