"""Keyed pseudonyms for direct identifiers (GB/T 37964 假名化), keys kept apart (GB/T 35273 §6.2).

A direct identifier never leaves the gateway in clear. In every query the gateway replaces each
direct-identifier column of a dataset by its pseudonym ``ps_`` + the first 32 hex digits of
HMAC-SHA256(key, UTF-8 of the value), where the key belongs to the authorization the query runs
under. So:

- the same person has the same pseudonym in every dataset and every query of one authorization,
  and joins on pseudonyms work;
- another authorization (another operator, or the same one after a new agreement) sees
  unrelated pseudonyms, so results cannot be linked across agreements;
- without the key a pseudonym cannot be reversed or recomputed from a guessed identity number.

Keys are 32 random bytes in ``<settings.pseudonym_keys_dir>/<authorization>.key`` (directory
0700, file 0600), created on first use and never in the domain store. The HMAC runs inside DuckDB
(vectorized ``sha256`` over BLOBs: HMAC(K, m) = H((K ⊕ opad) ‖ H((K ⊕ ipad) ‖ m)), RFC 2104),
with the two padded keys passed as statement parameters ``$1`` and ``$2`` so that key material
never appears in SQL text. ``pseudonym`` is the pure-Python twin for verification.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import threading
from pathlib import Path

PREFIX = "ps_"
HEX_DIGITS = 32
KEY_BYTES = 32
BLOCK = 64  # SHA-256 block size (RFC 2104 B)
AUTH_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,120}\Z")


class PseudonymKeyError(Exception):
    """A pseudonym key could not be created or read; no query runs without it."""


def pseudonym(key: bytes, value: str) -> str:
    """The pseudonym of `value` under `key` (what the gateway computes in SQL)."""
    digest = hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()
    return PREFIX + digest[:HEX_DIGITS]


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """(K ⊕ ipad, K ⊕ opad) for a key of at most one block (RFC 2104 §2)."""
    if len(key) > BLOCK:
        key = hashlib.sha256(key).digest()
    block = key.ljust(BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in block), bytes(b ^ 0x5C for b in block)


def pseudonym_sql(column_sql: str) -> str:
    """DuckDB SQL computing the pseudonym of `column_sql` with the pads as $1 (ipad), $2 (opad).

    NULL stays NULL. Non-text identifiers are cast to VARCHAR first.
    """
    inner = f"sha256($1 || encode(CAST({column_sql} AS VARCHAR)))"
    return f"('{PREFIX}' || substr(sha256($2 || unhex({inner})), 1, {HEX_DIGITS}))"


class PseudonymKeys:
    """The per-authorization keys, read once and kept in memory."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self._keys: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def key_for(self, authorization: str) -> bytes:
        if not isinstance(authorization, str) or not AUTH_ID.match(authorization):
            raise PseudonymKeyError(f"not an authorization id: {authorization!r}")
        with self._lock:
            key = self._keys.get(authorization)
            if key is None:
                key = self._load_or_create(authorization)
                self._keys[authorization] = key
            return key

    def pads_for(self, authorization: str) -> tuple[bytes, bytes]:
        return hmac_pads(self.key_for(authorization))

    def _load_or_create(self, authorization: str) -> bytes:
        """Read the key, or create it atomically (a complete file appears under its name, or
        none: concurrent creators agree on whichever was linked first)."""
        path = self.dir / f"{authorization}.key"
        try:
            if path.exists():
                return self._read(path)
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.dir, 0o700)
            tmp = self.dir / f".{authorization}.{secrets.token_hex(4)}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, secrets.token_bytes(KEY_BYTES))
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
            return self._read(path)
        except OSError as e:
            raise PseudonymKeyError(
                f"cannot read or create the pseudonym key of {authorization} in {self.dir}: "
                f"{e.strerror or e}") from None

    @staticmethod
    def _read(path: Path) -> bytes:
        key = path.read_bytes()
        if len(key) != KEY_BYTES:
            raise PseudonymKeyError(f"pseudonym key {path} is {len(key)} bytes, not {KEY_BYTES}")
        return key
