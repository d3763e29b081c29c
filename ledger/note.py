"""C2SP signed notes (signed-note v1.0.0), Ed25519 keys and Ed25519 cosignatures.

A note is UTF-8 text ending in a newline, a blank line, then one or more signature lines
``— <key name> <base64(key ID ‖ signature)>``. The signed message is the text including its final
newline. Key IDs are the first four bytes of SHA-256(name ‖ 0x0A ‖ algorithm ‖ public key).

Two algorithms are implemented:
- 0x01 Ed25519: the log's own signature over the note text (Go's golang.org/x/mod/sumdb/note);
- 0x04 Ed25519 cosignature (C2SP tlog-cosignature v1): a witness's statement "as of time T this is
  the largest consistent tree I have seen"; the signature is u64 BE time ‖ Ed25519 signature of
  ``cosignature/v1\\ntime <T>\\n`` ‖ checkpoint text.

Key encodings follow Go's note package: verifier keys ``<name>+<hex id>+base64(alg ‖ pub)`` and
signer keys ``PRIVATE+KEY+<name>+<hex id>+base64(alg ‖ seed)``. Parsers are strict; unknown
signature lines are kept as unverified so that notes stay forward-compatible.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
import time
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Iterable, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ledger.exceptions import FormatError, SignatureError

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04
EM_DASH = "\u2014"
MAX_SIGNATURES = 100  # Go's note.Open limit; C2SP requires accepting at least 16
_SIG_PREFIX = EM_DASH + " "


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise FormatError(f"{what} is not standard base64: {text[:60]!r}") from None


# Character classes as regular expressions: notes are checked on every batch the sequencer signs
# and on every checkpoint read, and a scan in C is ~50x faster than unicodedata per character.
# Category Cc is fixed by Unicode's stability policy (U+0000-U+001F, U+007F-U+009F); the space
# class is every character with str.isspace() or category Zs. tests/ledger/test_note_checkpoint.py checks
# both against unicodedata for every code point, so a Unicode update cannot slip past.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
_SPACE = re.compile(
    r"[\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")


def check_key_name(name: str) -> None:
    """C2SP signed-note: a key name is non-empty and has no Unicode spaces and no plus sign."""
    if not name:
        raise FormatError("key name is empty")
    if "+" in name or _SPACE.search(name):
        raise FormatError(f"key name {name!r} contains a space or a plus sign")
    if _CONTROL.search(name):
        raise FormatError(f"key name {name!r} contains a control character")


def key_id(name: str, alg: int, public: bytes) -> int:
    """C2SP key ID: SHA-256(name ‖ 0x0A ‖ alg ‖ public key)[:4] as a big-endian uint32."""
    digest = sha256(name.encode() + b"\n" + bytes([alg]) + public).digest()
    return struct.unpack(">I", digest[:4])[0]


def _public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def cosignature_message(text: str, timestamp: int) -> bytes:
    """The message an Ed25519 cosigner signs (C2SP tlog-cosignature v1)."""
    return f"cosignature/v1\ntime {timestamp}\n".encode() + text.encode()


class Signer(Protocol):
    name: str
    key_id: int

    def sign(self, text: str) -> bytes: ...


class Verifier(Protocol):
    name: str
    key_id: int

    def verify(self, text: str, sig: bytes) -> bool: ...


@dataclass(frozen=True)
class Ed25519Signer:
    """A signer for the log (alg 0x01) or for a witness (alg 0x04, cosignatures)."""

    name: str
    private: Ed25519PrivateKey
    alg: int = ALG_ED25519
    clock: object = field(default=time.time, compare=False, repr=False)

    @classmethod
    def generate(
        cls, name: str, alg: int = ALG_ED25519, clock: object = time.time
    ) -> "Ed25519Signer":
        check_key_name(name)
        _check_alg(alg)
        return cls(name, Ed25519PrivateKey.generate(), alg, clock)

    @property
    def public(self) -> bytes:
        return _public_bytes(self.private.public_key())

    @property
    def key_id(self) -> int:
        return key_id(self.name, self.alg, self.public)

    def sign(self, text: str) -> bytes:
        if self.alg == ALG_COSIGNATURE_V1:
            ts = int(self.clock())  # type: ignore[operator]
            return struct.pack(">Q", ts) + self.private.sign(cosignature_message(text, ts))
        return self.private.sign(text.encode())

    def vkey(self) -> str:
        return format_vkey(self.name, self.alg, self.public)

    def skey(self) -> str:
        seed = self.private.private_bytes_raw()
        return f"PRIVATE+KEY+{self.name}+{self.key_id:08x}+{b64(bytes([self.alg]) + seed)}"

    def verifier(self) -> "Ed25519Verifier":
        return Ed25519Verifier(self.name, self.private.public_key(), self.alg)


@dataclass(frozen=True)
class Ed25519Verifier:
    name: str
    public_key: Ed25519PublicKey
    alg: int = ALG_ED25519

    @property
    def key_id(self) -> int:
        return key_id(self.name, self.alg, _public_bytes(self.public_key))

    def verify(self, text: str, sig: bytes) -> bool:
        try:
            if self.alg == ALG_COSIGNATURE_V1:
                if len(sig) != 72:
                    return False
                (ts,) = struct.unpack(">Q", sig[:8])
                self.public_key.verify(sig[8:], cosignature_message(text, ts))
            else:
                if len(sig) != 64:
                    return False
                self.public_key.verify(sig, text.encode())
        except InvalidSignature:
            return False
        return True

    def vkey(self) -> str:
        return format_vkey(self.name, self.alg, _public_bytes(self.public_key))


def _check_alg(alg: int) -> None:
    if alg not in (ALG_ED25519, ALG_COSIGNATURE_V1):
        raise FormatError(f"unsupported key algorithm 0x{alg:02x} (0x01 Ed25519, 0x04 cosignature)")


def format_vkey(name: str, alg: int, public: bytes) -> str:
    check_key_name(name)
    return f"{name}+{key_id(name, alg, public):08x}+{b64(bytes([alg]) + public)}"


def _split_key(text: str, what: str) -> tuple[str, int, int, bytes]:
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise FormatError(f"{what} must be <name>+<key id>+<key>, got {text[:80]!r}")
    name, hexid, key = parts
    check_key_name(name)
    if len(hexid) != 8 or any(c not in "0123456789abcdef" for c in hexid):
        raise FormatError(f"{what} key ID {hexid!r} is not 8 lowercase hex digits")
    raw = unb64(key, what)
    if len(raw) != 33:
        raise FormatError(f"{what} key is {len(raw)} bytes, want 1 + 32")
    _check_alg(raw[0])
    return name, int(hexid, 16), raw[0], raw[1:]


def parse_vkey(text: str) -> Ed25519Verifier:
    """Parse a verifier key; the key ID in the text must match the key."""
    name, kid, alg, pub = _split_key(text, "verifier key")
    verifier = Ed25519Verifier(name, Ed25519PublicKey.from_public_bytes(pub), alg)
    if verifier.key_id != kid:
        raise FormatError(f"verifier key {name}: key ID {kid:08x} does not match the key")
    return verifier


def parse_skey(text: str) -> Ed25519Signer:
    """Parse a signer key (``PRIVATE+KEY+…``); the key ID in the text must match the key."""
    if not text.startswith("PRIVATE+KEY+"):
        raise FormatError("signer key must start with PRIVATE+KEY+")
    name, kid, alg, seed = _split_key(text[len("PRIVATE+KEY+") :], "signer key")
    signer = Ed25519Signer(name, Ed25519PrivateKey.from_private_bytes(seed), alg)
    if signer.key_id != kid:
        raise FormatError(f"signer key {name}: key ID {kid:08x} does not match the key")
    return signer


# --- notes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    name: str
    key_id: int
    b64: str  # base64(key ID ‖ signature), as on the line

    @property
    def line(self) -> str:
        return f"{_SIG_PREFIX}{self.name} {self.b64}\n"

    @property
    def raw(self) -> bytes:
        return base64.b64decode(self.b64)[4:]


@dataclass(frozen=True)
class Note:
    text: str
    sigs: tuple[Signature, ...]  # verified by a known key
    unverified: tuple[Signature, ...] = ()  # from keys the reader does not know

    def format(self) -> bytes:
        return format_note(self.text, [*self.sigs, *self.unverified])


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise FormatError("note text must end in a newline")
    if _CONTROL_BUT_NEWLINE.search(text):
        raise FormatError("note text contains a control character other than newline")


def format_note(text: str, sigs: Iterable[Signature]) -> bytes:
    _check_text(text)
    lines = "".join(s.line for s in sigs)
    if not lines:
        raise FormatError("a signed note needs at least one signature")
    return (text + "\n" + lines).encode()


def signature_for(text: str, signer: Signer) -> Signature:
    sig = signer.sign(text)
    return Signature(signer.name, signer.key_id, b64(struct.pack(">I", signer.key_id) + sig))


def sign_note(text: str, *signers: Signer) -> bytes:
    """Sign `text` with each signer; the result is a complete note."""
    _check_text(text)
    return format_note(text, [signature_for(text, s) for s in signers])


def parse_signature_line(line: str) -> Signature:
    if not line.startswith(_SIG_PREFIX):
        raise FormatError(f"signature line does not start with '— ': {line[:60]!r}")
    name, sep, b = line[len(_SIG_PREFIX) :].partition(" ")
    if not sep:
        raise FormatError(f"signature line has no signature: {line[:60]!r}")
    check_key_name(name)
    raw = unb64(b, f"signature of {name}")
    if len(raw) < 5:
        raise FormatError(f"signature of {name} is too short")
    return Signature(name, struct.unpack(">I", raw[:4])[0], b)


def split_note(msg: bytes) -> tuple[str, list[Signature]]:
    """Split a note at its last blank line into text and parsed signature lines (unverified)."""
    try:
        s = msg.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError("note is not UTF-8") from None
    cut = s.rfind("\n\n")
    if cut < 0:
        raise FormatError("note has no blank line before its signatures")
    text, block = s[: cut + 1], s[cut + 2 :]
    _check_text(text)
    if not block.endswith("\n"):
        raise FormatError("note signatures must end in a newline")
    sigs: list[Signature] = []
    seen: set[str] = set()
    for line in block[:-1].split("\n"):
        if line in seen:
            continue  # duplicate lines are dropped, as Go's note.Open does
        seen.add(line)
        sigs.append(parse_signature_line(line))
    if len(sigs) > MAX_SIGNATURES:
        raise FormatError(f"note has {len(sigs)} signatures, more than {MAX_SIGNATURES}")
    return text, sigs


def open_note(msg: bytes, verifiers: Iterable[Verifier]) -> Note:
    """Verify a note: every signature by a known key must verify, and at least one must exist."""
    text, sigs = split_note(msg)
    known = {(v.name, v.key_id): v for v in verifiers}
    good: list[Signature] = []
    unknown: list[Signature] = []
    for sig in sigs:
        v = known.get((sig.name, sig.key_id))
        if v is None:
            unknown.append(sig)
            continue
        if not v.verify(text, sig.raw):
            raise SignatureError(
                f"invalid signature by {sig.name} ({sig.key_id:08x})", sig.name, sig.key_id
            )
        good.append(sig)
    if not good:
        names = ", ".join(f"{v.name} ({v.key_id:08x})" for v in known.values()) or "none"
        raise SignatureError(f"note has no signature from a trusted key (trusted: {names})")
    return Note(text, tuple(good), tuple(unknown))
