"""Evidence bundles: a zip that proves, offline, that chosen entries are in the signed log.

A bundle (format ``shuyu-evidence/v1``) holds, for one signed checkpoint:

- ``checkpoint``: the C2SP signed note (log signature and the cosignatures the log holds);
- ``vkey``: the log's verifier key, for information only: a verifier must bring the key it
  trusts (``--vkey``) and the bundle is refused if its key differs;
- ``entries/<index>.json``: each entry's exact leaf bytes (RFC 8785 canonical JSON);
- ``proofs/<index>.tlog-proof``: a c2sp.org/tlog-proof@v1 inclusion proof of that entry in
  that checkpoint's tree;
- ``witnesses``: the witness cosignature keys the log has registered (information only);
- ``manifest.json``: the selection, the tree, and the sha256 of every other file;
- ``README.md`` and ``go/``: how to verify it with ``shuyu ledger evidence verify`` or with a
  short Go program built on ``golang.org/x/mod/sumdb`` (``note.Open``, ``tlog.CheckRecord``).

:func:`build_evidence` re-hashes every entry and verifies every proof before writing it, so a
bundle is never made from an altered database. :func:`verify_evidence` trusts nothing in the
zip but the key it is given: the checkpoint signature, each entry's inclusion, the proofs' own
checkpoints, the manifest's hashes, and that the zip holds no file the manifest does not list.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from importlib import resources
from typing import Callable, Sequence

from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.exceptions import FormatError, LedgerError, ProofError, SignatureError, VerificationError
from ledger.hashing import leaf_hash
from ledger.log import Log
from ledger.note import Ed25519Verifier, b64, split_note
from ledger.proofbundle import format_tlog_proof, parse_tlog_proof
from ledger.proofs import verify_inclusion

FORMAT = "shuyu-evidence/v1"
MAX_ENTRIES = 10_000
MAX_ZIP_BYTES = 1 << 30  # a bundle of 10,000 entries of 64 KiB stays well below this
GO_FILES = ("go/main.go",)
Progress = Callable[[int, int], None]


def entry_path(index: int) -> str:
    return f"entries/{index:012d}.json"


def proof_path(index: int) -> str:
    return f"proofs/{index:012d}.tlog-proof"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _go_source() -> bytes:
    return resources.files("ledger").joinpath("evidence_go/main.go").read_bytes()


def readme(vkey: str, origin: str, size: int, count: int, selection: str) -> str:
    return f"""# Ledger evidence / 账本证据包

Format `{FORMAT}`. {count} entries of the log `{origin}`, each with an inclusion proof in the
signed checkpoint of tree size {size}. Selection / 选择条件: {selection}

Everything here can be checked offline, without the platform. First obtain the log's verifier
key from a source you trust (not from this zip); the key this bundle was made with is:

    {vkey}

## 1. With the Shuyu command line / 使用 shuyu 命令

    shuyu ledger evidence verify evidence.zip --vkey '{vkey}'

It checks the checkpoint's signature, that every entry's leaf hash SHA-256(0x00 ‖ bytes) is
proven included by its RFC 9162 proof in that checkpoint, that every proof names the same
checkpoint, and the manifest's sha256 of every file. Add `--witness-vkey KEY` (repeatable) to
also require each named witness's valid cosignature. The leaf hash of one entry by hand
(RFC 9162 §2.1.1: SHA-256 over a 0x00 byte followed by the entry's bytes):

    unzip evidence.zip -d evidence
    (printf '\\000'; cat evidence/entries/<index>.json) | sha256sum

`proofs/<index>.tlog-proof` is a c2sp.org/tlog-proof@v1 bundle that any tlog client reads.

## 2. With Go and golang.org/x/mod / 使用 Go 与 golang.org/x/mod

`go/main.go` opens `checkpoint` with `note.Open` (golang.org/x/mod/sumdb/note) and checks each
proof with `tlog.CheckRecord` (golang.org/x/mod/sumdb/tlog). Either in module mode:

    cd evidence/go && go mod init evidencecheck && go mod tidy
    go run . '{vkey}' ..

or in GOPATH mode with Debian's golang-golang-x-mod-dev package (no network):

    cd evidence/go && GO111MODULE=off GOPATH=/usr/share/gocode go run . '{vkey}' ..

It prints `OK <n> entries in <origin> at size <size>` or `FAIL: …` and exits non-zero.

## Files / 文件

- `checkpoint`: the signed checkpoint (C2SP tlog-checkpoint) with cosignatures;
- `entries/<index>.json`: exact leaf bytes (RFC 8785 canonical JSON);
- `proofs/<index>.tlog-proof`: inclusion proof (C2SP tlog-proof@v1);
- `manifest.json`: selection, tree and sha256 of every file; `vkey`, `witnesses`: keys.
"""


@dataclass
class EvidenceBundle:
    data: bytes
    size: int
    indexes: list[int]


def build_evidence(
    log: Log,
    indexes: Sequence[int],
    selection: str,
    generated_by: str | None = None,
    size: int | None = None,
    progress: Progress | None = None,
) -> EvidenceBundle:
    """A zip proving each entry of `indexes` in the signed tree of `size` (default: latest)."""
    wanted = sorted(set(int(i) for i in indexes))
    if not wanted:
        raise LedgerError("no entries selected: an evidence bundle needs at least one")
    if len(wanted) > MAX_ENTRIES:
        raise LedgerError(
            f"{len(wanted)} entries selected; an evidence bundle holds at most {MAX_ENTRIES} "
            "(narrow the filter, or export the whole log with `shuyu ledger export`)"
        )
    note = log.checkpoint_with_cosignatures(size)
    cp, _ = open_checkpoint(note, log.verifier())
    for i in wanted:
        if not 0 <= i < cp.size:
            raise LedgerError(f"entry {i} is not in the signed tree of size {cp.size}")
    vkey = log.verifier().vkey()
    files: dict[str, bytes] = {"checkpoint": note, "vkey": (vkey + "\n").encode()}
    witnesses = "".join(f"{name}\t{wkey}\n" for name, wkey, _ in log.store.witnesses())
    files["witnesses"] = witnesses.encode()
    listed = []
    for n, i in enumerate(wanted, 1):
        data, proof = _proven_entry(log, i, cp)
        files[entry_path(i)] = data
        files[proof_path(i)] = format_tlog_proof(i, proof, note).encode()
        listed.append({"index": i, "leaf_hash": b64(leaf_hash(data)),
                       "entry": entry_path(i), "proof": proof_path(i)})
        if progress:
            progress(n, len(wanted))
    for name in GO_FILES:
        files[name] = _go_source()
    files["README.md"] = readme(vkey, cp.origin, cp.size, len(wanted), selection).encode()
    manifest = {
        "format": FORMAT, "origin": cp.origin, "tree_size": cp.size, "root": b64(cp.root),
        "selection": selection, "generated_by": generated_by,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "entries": listed,
        "sha256": {name: _sha256(body) for name, body in sorted(files.items())},
    }
    files["manifest.json"] = json.dumps(manifest, indent=1, ensure_ascii=False).encode()
    return EvidenceBundle(canonical_zip(list(files.items())), cp.size, wanted)


def canonical_zip(members: list[tuple[str, bytes]]) -> bytes:
    """The one byte string a bundle with these members is: stored (uncompressed, so no
    compressor version matters), fixed times, Unix attributes, members in the given order."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for name, body in members:
            info = zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0))
            info.create_system = 3
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_STORED
            z.writestr(info, body)
    return out.getvalue()


def _proven_entry(log: Log, index: int, cp: Checkpoint) -> tuple[bytes, list[bytes]]:
    rows = log.store.entries(index, index + 1)
    if not rows:
        raise VerificationError(f"entry {index} is missing from the ledger database", index)
    _, data, stored = rows[0]
    if leaf_hash(data) != stored:
        raise VerificationError(f"entry {index} does not match its stored leaf hash", index)
    proof = log.store.inclusion_proof(index, cp.size)
    try:
        verify_inclusion(stored, index, cp.size, proof, cp.root)
    except ProofError as e:
        raise VerificationError(
            f"the stored hashes do not prove entry {index} in the signed tree of size "
            f"{cp.size} ({e}): the ledger database was altered", index
        ) from None
    return data, proof


# --- verifying -----------------------------------------------------------------------------------


@dataclass
class EvidenceReport:
    origin: str
    size: int
    indexes: list[int]
    cosigned_by: list[str] = field(default_factory=list)

    def summary(self) -> str:
        who = ", ".join(self.cosigned_by) or "no known witness"
        return (f"OK {len(self.indexes)} entries proven in {self.origin} at tree size "
                f"{self.size} (cosigned by {who})\n")


def _read_zip(source: bytes) -> dict[str, bytes]:
    """The members of a bundle, which must be byte-identical to its canonical form: the zip's
    CRCs cover the members' bytes, and the canonical form every header byte, so a single
    changed byte anywhere in the file is refused."""
    if len(source) > MAX_ZIP_BYTES:
        raise FormatError(f"evidence bundle is larger than {MAX_ZIP_BYTES} bytes")
    try:
        with zipfile.ZipFile(io.BytesIO(source)) as z:
            names = z.namelist()
            if len(names) != len(set(names)):
                raise FormatError("evidence bundle holds the same file name twice")
            if sum(i.file_size for i in z.infolist()) > MAX_ZIP_BYTES:
                raise FormatError("evidence bundle unpacks to more than 1 GiB")
            members = [(name, z.read(name)) for name in names]
            if canonical_zip(members) != source:
                raise FormatError(
                    "the zip is not byte-identical to the bundle as issued (it was changed or "
                    "re-packed); check the unzipped files with the Go program, or get it again"
                )
            return dict(members)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, ValueError, OSError,
            NotImplementedError, RuntimeError, KeyError, UnicodeDecodeError) as e:
        raise FormatError(f"not a readable zip: {e}") from None


def _manifest(files: dict[str, bytes]) -> dict:
    try:
        manifest = json.loads(files["manifest.json"])
    except KeyError:
        raise FormatError("the bundle has no manifest.json") from None
    except ValueError as e:
        raise FormatError(f"manifest.json is not JSON: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise FormatError(f"manifest.json is not a {FORMAT} manifest")
    return manifest


def _check_manifest_hashes(files: dict[str, bytes], manifest: dict) -> None:
    hashes = manifest.get("sha256")
    if not isinstance(hashes, dict):
        raise FormatError("manifest.json lists no file hashes")
    extra = sorted(set(files) - set(hashes) - {"manifest.json"})
    if extra:
        raise VerificationError(f"the bundle holds files the manifest does not list: {extra}")
    for name, want in sorted(hashes.items()):
        if name not in files:
            raise VerificationError(f"the bundle lacks {name}, which its manifest lists")
        if _sha256(files[name]) != want:
            raise VerificationError(f"{name} does not match its sha256 in manifest.json")


def _check_entry(files: dict[str, bytes], item: dict, cp: Checkpoint, note_text: str) -> int:
    try:
        index = int(item["index"])
        data = files[item["entry"]]
        proof = parse_tlog_proof(files[item["proof"]].decode())
    except (KeyError, TypeError, ValueError, UnicodeDecodeError) as e:
        raise FormatError(f"manifest entry {item!r} is incomplete: {e}") from None
    if proof.index != index:
        raise VerificationError(f"{item['proof']} proves index {proof.index}, not {index}", index)
    if split_note(proof.checkpoint)[0] != note_text:
        raise VerificationError(f"{item['proof']} is for another checkpoint", index)
    try:
        verify_inclusion(leaf_hash(data), index, cp.size, proof.hashes, cp.root)
    except ProofError as e:
        raise VerificationError(
            f"entry {index} is not proven in the tree of size {cp.size}: {e} (the entry or its "
            "proof was changed)", index
        ) from None
    return index


def verify_evidence(
    source: bytes, vkey: Ed25519Verifier, witnesses: Sequence[Ed25519Verifier] = ()
) -> EvidenceReport:
    """Check a bundle against the log key `vkey` (and require each witness's cosignature)."""
    files = _read_zip(source)
    manifest = _manifest(files)
    _check_manifest_hashes(files, manifest)
    bundled = files.get("vkey", b"").decode(errors="replace").strip()
    if bundled != vkey.vkey():
        raise VerificationError(
            f"the bundle was made for the log key {bundled!r}, not the trusted key {vkey.vkey()}"
        )
    try:
        cp, note = open_checkpoint(files["checkpoint"], vkey, witnesses)
    except KeyError:
        raise FormatError("the bundle has no checkpoint") from None
    except SignatureError as e:
        raise VerificationError(f"checkpoint signature: {e}") from None
    cosigned = sorted({s.name for s in note.sigs if s.name != vkey.name})
    missing = [w.name for w in witnesses if w.name not in cosigned]
    if missing:
        raise VerificationError(f"the checkpoint carries no cosignature by {', '.join(missing)}")
    if manifest.get("tree_size") != cp.size or manifest.get("origin") != cp.origin:
        raise VerificationError("manifest.json names another tree than the checkpoint")
    items = manifest.get("entries")
    if not isinstance(items, list) or not items:
        raise FormatError("manifest.json lists no entries")
    indexes = [_check_entry(files, item, cp, note.text) for item in items]
    return EvidenceReport(cp.origin, cp.size, indexes, cosigned)
