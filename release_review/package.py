"""Release packages: a sealed zip with the files, their provenance and a ledger proof.

Layout, in this order (no other members)::

    PROVENANCE.json          the manifest (``provenance.py``)
    PROVENANCE.txt           the same for people (中文 / English)
    files/<name>             each released file
    ledger/entry.json        the release.released ledger entry, its canonical bytes (the leaf)
    ledger/tlog-proof        its inclusion proof, C2SP tlog-proof@v1 (with the checkpoint)
    ledger/checkpoint        the signed checkpoint the proof leads to, with cosignatures

The zip is *sealed*: members are stored uncompressed with fixed metadata in a fixed order, so
the bytes of a package follow from its contents alone. ``verify_package`` checks, offline and
with only the log's verifier key:

1. the zip reads, every member's CRC holds, the layout is exactly the one above, and rebuilding
   the zip from its members (with the comment ``shuyu release <id>``) gives the same bytes, so
   any other change to the file is caught;
2. every released file has the sha256 the manifest gives;
3. the ledger entry is canonical JSON of type ``release.released`` for this release, and names
   the sha256 of the manifest, of the note and of every file;
4. the checkpoint is signed by the log's key (and ``ledger/checkpoint`` is that checkpoint);
5. the inclusion proof leads from the entry's leaf hash to the checkpoint's root (RFC 9162
   §2.1.3.2).

Any failure raises ``PackageVerificationError`` naming the member and the hashes involved.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ledger.checkpoint import open_checkpoint
from ledger.entry import decode_entry
from ledger.exceptions import LedgerError
from ledger.hashing import leaf_hash
from ledger.note import Ed25519Verifier, parse_vkey, split_note
from ledger.proofbundle import parse_tlog_proof
from ledger.proofs import verify_inclusion
from release_review.exceptions import PackageVerificationError
from release_review.provenance import FILES_DIR
from release_review.states import AuditEventType

MANIFEST = "PROVENANCE.json"
NOTE = "PROVENANCE.txt"
ENTRY = "ledger/entry.json"
PROOF = "ledger/tlog-proof"
CHECKPOINT = "ledger/checkpoint"
SEALED_TIME = (1980, 1, 1, 0, 0, 0)


def _info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=SEALED_TIME)
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 3
    info.external_attr = 0o100644 << 16
    return info


def seal(members: list[tuple[str, bytes]], comment: bytes = b"") -> bytes:
    """The sealed zip of `members` (name, bytes), in the order given."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
        for name, data in members:
            z.writestr(_info(name), data)
        z.comment = comment
    return out.getvalue()


def layout(file_names: list[str]) -> list[str]:
    return [MANIFEST, NOTE, *[FILES_DIR + n for n in file_names], ENTRY, PROOF, CHECKPOINT]


def comment_for(release_id: str) -> bytes:
    return f"shuyu release {release_id}".encode()


def build_package(manifest: bytes, note: bytes, files: list[tuple[str, bytes]], entry: bytes,
                  proof: str, checkpoint: bytes, release_id: str) -> bytes:
    members = [(MANIFEST, manifest), (NOTE, note), *[(FILES_DIR + n, d) for n, d in files],
               (ENTRY, entry), (PROOF, proof.encode("utf-8")), (CHECKPOINT, checkpoint)]
    return seal(members, comment_for(release_id))


@dataclass(frozen=True)
class VerifiedPackage:
    release: str
    title: str
    files: list[dict[str, Any]]
    ledger_index: int
    tree_size: int
    origin: str
    cosigners: list[str]
    sources: list[dict[str, Any]]

    def summary(self) -> str:
        names = ", ".join(f["name"] for f in self.files)
        cos = f"; cosigned by {', '.join(self.cosigners)}" if self.cosigners else ""
        return (f"OK: release {self.release} ({self.title}): {len(self.files)} file(s) [{names}]"
                f" match their provenance; entry {self.ledger_index} is in {self.origin} at tree "
                f"size {self.tree_size}{cos}")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fail(message: str, member: str | None = None, expected: str | None = None,
          actual: str | None = None) -> PackageVerificationError:
    return PackageVerificationError(message, member, expected, actual)


def vkey_from(value: str) -> Ed25519Verifier:
    """A verifier key given as itself or as the path of a file holding it."""
    text = value.strip()
    if "+" not in text and Path(text).is_file():
        text = Path(text).read_text().strip()
    try:
        return parse_vkey(text)
    except LedgerError as e:
        raise _fail(f"the verifier key is not a valid vkey: {e}") from None


def _read_members(data: bytes) -> tuple[zipfile.ZipFile, list[tuple[str, bytes]]]:
    try:
        z = zipfile.ZipFile(io.BytesIO(data))
        infos = z.infolist()
        members = [(i.filename, z.read(i)) for i in infos]
    except Exception as e:  # noqa: BLE001 - zipfile raises many kinds on damaged input
        raise _fail(f"the package is not a readable zip ({type(e).__name__}: {e})") from None
    return z, members


def verify_package(data: bytes, vkey: Ed25519Verifier | str,
                   progress: Callable[[str], None] | None = None) -> VerifiedPackage:
    """Verify a package's bytes offline (see the module doc); raise on the first problem."""
    step = progress or (lambda _: None)
    verifier = vkey if isinstance(vkey, Ed25519Verifier) else vkey_from(vkey)
    step("zip")
    _, members = _read_members(data)
    names = [n for n, _ in members]
    if len(set(names)) != len(names):
        raise _fail("the package has two members with the same name")
    content = dict(members)
    try:
        manifest = json.loads(content[MANIFEST])
    except KeyError:
        raise _fail(f"the package has no {MANIFEST}", MANIFEST) from None
    except ValueError as e:
        raise _fail(f"{MANIFEST} is not JSON ({e})", MANIFEST) from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, list) or not all(isinstance(f, dict) and "name" in f
                                              for f in files):
        raise _fail(f"{MANIFEST} has no list of files", MANIFEST)
    expected = layout([str(f["name"]) for f in files])
    if names != expected:
        raise _fail(f"the package's members {names} are not the sealed layout {expected}")
    sealed = seal(members, comment_for(str(manifest.get("release"))))
    if sealed != data:
        at = next((i for i, (a, b) in enumerate(zip(sealed, data)) if a != b),
                  min(len(sealed), len(data)))
        raise _fail(f"the zip is not in its sealed form: its bytes differ from the sealed zip "
                    f"of its own contents from byte {at} (the file was altered)", None,
                    _sha(sealed), _sha(data))
    step("files")
    for f in files:
        member = FILES_DIR + str(f["name"])
        actual = _sha(content[member])
        if actual != f.get("sha256"):
            raise _fail(f"{member} does not match its sha256 in {MANIFEST}", member,
                        str(f.get("sha256")), actual)
    step("entry")
    entry = _check_entry(content, manifest)
    step("proof")
    index, size, origin, cosigners = _check_proof(content, verifier)
    return VerifiedPackage(str(manifest.get("release")), str(manifest.get("title", "")),
                           files, index, size, origin, cosigners,
                           list(manifest.get("sources") or []))


def _check_entry(content: dict[str, bytes], manifest: dict[str, Any]) -> dict[str, Any]:
    raw = content[ENTRY]
    try:
        entry = decode_entry(raw)
    except LedgerError as e:
        raise _fail(f"{ENTRY} is not a canonical ledger entry ({e})", ENTRY) from None
    if entry.get("type") != str(AuditEventType.RELEASE_RELEASE):
        raise _fail(f"{ENTRY} is a {entry.get('type')!r} entry, not "
                    f"{AuditEventType.RELEASE_RELEASE}", ENTRY)
    if entry.get("release") != manifest.get("release"):
        raise _fail(f"{ENTRY} releases {entry.get('release')!r}, the manifest describes "
                    f"{manifest.get('release')!r}", ENTRY)
    details = entry.get("details") or {}
    for member, key in ((MANIFEST, "provenance_sha256"), (NOTE, "note_sha256")):
        actual = _sha(content[member])
        if details.get(key) != actual:
            raise _fail(f"{member} is not the one the ledger entry names", member,
                        str(details.get(key)), actual)
    named = {f.get("name"): f.get("sha256") for f in details.get("files") or []}
    listed = {f["name"]: f.get("sha256") for f in manifest["files"]}
    if named != listed:
        raise _fail("the files the ledger entry names are not the files of the package", ENTRY)
    return entry


def _check_proof(content: dict[str, bytes], verifier: Ed25519Verifier
                 ) -> tuple[int, int, str, list[str]]:
    try:
        proof = parse_tlog_proof(content[PROOF].decode("utf-8"))
    except (LedgerError, UnicodeDecodeError) as e:
        raise _fail(f"{PROOF} is not a tlog-proof ({e})", PROOF) from None
    if proof.checkpoint != content[CHECKPOINT]:
        raise _fail(f"{CHECKPOINT} is not the checkpoint inside {PROOF}", CHECKPOINT)
    try:
        cp, note = open_checkpoint(proof.checkpoint, verifier)
    except LedgerError as e:
        raise _fail(f"the checkpoint does not verify with {verifier.name}'s key: {e}",
                    CHECKPOINT) from None
    leaf = leaf_hash(content[ENTRY])
    try:
        verify_inclusion(leaf, proof.index, cp.size, proof.hashes, cp.root)
    except LedgerError as e:
        raise _fail(f"the ledger entry is not in the checkpointed log: {e}", PROOF,
                    None, leaf.hex()) from None
    _, sigs = split_note(proof.checkpoint)
    cosigners = [s.name for s in sigs if s.name != cp.origin]
    return proof.index, cp.size, cp.origin, cosigners
