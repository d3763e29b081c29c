"""The log's signing key on disk: one Go-format signer key file, readable by its owner only."""

from __future__ import annotations

import os
from pathlib import Path

from ledger.exceptions import LedgerError
from ledger.note import ALG_ED25519, Ed25519Signer, parse_skey


def create_key(path: Path, name: str, alg: int = ALG_ED25519) -> Ed25519Signer:
    """Create a new key file (mode 0600); refuse to overwrite an existing one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    signer = Ed25519Signer.generate(name, alg)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(signer.skey() + "\n")
        f.flush()
        os.fsync(f.fileno())
    return signer


def load_key(path: Path) -> Ed25519Signer:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        raise LedgerError(f"no signing key at {path} (run `shuyu ledger init`)") from None
    if os.stat(path).st_mode & 0o077:
        raise LedgerError(f"signing key {path} is readable by others; chmod 600 it")
    return parse_skey(text)


def load_or_create_key(path: Path, name: str, alg: int = ALG_ED25519) -> tuple[Ed25519Signer, bool]:
    if path.exists():
        signer = load_key(path)
        if signer.name != name:
            raise LedgerError(f"key {path} is named {signer.name!r}, expected {name!r}")
        return signer, False
    return create_key(path, name, alg), True
