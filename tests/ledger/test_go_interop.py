"""Interoperability with Go: checkpoints, proofs and cosignatures produced here are checked by
golang.org/x/mod/sumdb (note.Open, tlog.CheckRecord, tlog.CheckTree, tlog.TreeHash).

The Go program is `tests/ledger/go/tlogcheck` (our own code, built here with Debian's Go and
x/mod in GOPATH mode, no network). Every test also shows that the checker fails when one byte
of a note, a proof, an entry or a cosignature is changed, so a pass means something.
"""

from __future__ import annotations

import base64
import os
import random
import shutil
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from ledger.checkpoint import parse_checkpoint
from ledger.log import Log, LogConfig, init_log
from ledger.note import Ed25519Signer, split_note
from ledger.witness import Witness
from ledger.witness_pull import cosign_from_log

pytestmark = pytest.mark.golang

GO_SOURCE = Path(__file__).parent / "go" / "tlogcheck"
GOPATH = "/usr/share/gocode"
ORIGIN = "interop.test/ledger"
# checkpoint sizes: powers of two, their neighbours, and sizes that span several tile widths
SIZES = [1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 31, 32, 33, 64, 100, 127, 128, 129, 255, 256, 257, 300]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="session")
def tlogcheck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the Go checker; fail (not skip) without Go or x/mod: `make test` installs them."""
    go = shutil.which("go")
    if go is None or not Path(GOPATH, "src/golang.org/x/mod/sumdb/note").is_dir():
        pytest.fail("Go and golang.org/x/mod are needed: run deploy/bootstrap/test-deps.sh")
    out = tmp_path_factory.mktemp("go") / "tlogcheck"
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": GOPATH,
        "GOFLAGS": "",
        "GOPROXY": "off",
        "CGO_ENABLED": "0",
    }
    if "HOME" not in env and "GOCACHE" not in env:
        env["GOCACHE"] = str(tmp_path_factory.mktemp("gocache"))
    build = subprocess.run(
        [go, "build", "-o", str(out), "."], cwd=GO_SOURCE, env=env, capture_output=True, text=True
    )
    assert build.returncode == 0, build.stderr
    return out


@dataclass
class GoInput:
    """What the Go checker reads (format in tests/ledger/go/tlogcheck/main.go)."""

    vkey: str
    notes: list[bytes]
    entries: list[bytes] = field(default_factory=list)
    inclusions: list[tuple[int, int, bytes, list[bytes]]] = field(default_factory=list)
    consistencies: list[tuple[int, int, list[bytes]]] = field(default_factory=list)
    cosigners: list[str] = field(default_factory=list)

    def encode(self) -> bytes:
        out = [f"vkey {self.vkey}\n".encode()]
        out += [f"cosigner {c}\n".encode() for c in self.cosigners]
        for note in self.notes:
            out += [f"checkpoint {len(note)}\n".encode(), note]
        if self.entries:
            out.append(f"entries {len(self.entries)}\n".encode())
            out += [(b64(e) + "\n").encode() for e in self.entries]
        for size, index, entry, proof in self.inclusions:
            out.append(f"inclusion {size} {index} {len(proof)}\n{b64(entry)}\n".encode())
            out += [(b64(h) + "\n").encode() for h in proof]
        for old, new, proof in self.consistencies:
            out.append(f"consistency {old} {new} {len(proof)}\n".encode())
            out += [(b64(h) + "\n").encode() for h in proof]
        return b"".join(out)


def run_go(binary: Path, data: GoInput) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary)], input=data.encode(), capture_output=True, timeout=120)


def assert_ok(binary: Path, data: GoInput) -> str:
    res = run_go(binary, data)
    out = res.stdout.decode()
    assert res.returncode == 0 and "OK " in out, out + res.stderr.decode()
    return out


def assert_fails(binary: Path, data: GoInput, why: str) -> None:
    res = run_go(binary, data)
    out = res.stdout.decode()
    assert res.returncode == 1 and "FAIL: " in out, out
    assert why in out, out


def flip(data: bytes, pos: int) -> bytes:
    return data[:pos] + bytes([data[pos] ^ 0x01]) + data[pos + 1 :]


def with_note_char_changed(note: bytes, line: int) -> bytes:
    """Change one base64 character of line `line` of the checkpoint text (still valid base64)."""
    text, sigs = note.split(b"\n\n", 1)
    lines = text.split(b"\n")
    target = bytearray(lines[line])
    target[0] = ord("B") if target[0] != ord("B") else ord("C")
    lines[line] = bytes(target)
    return b"\n".join(lines) + b"\n\n" + sigs


def with_signature_byte_flipped(note: bytes, sig_line: int = 0) -> bytes:
    text, sigs = note.split(b"\n\n", 1)
    lines = sigs.decode().split("\n")
    prefix, _, sig = lines[sig_line].rpartition(" ")
    raw = base64.b64decode(sig)
    lines[sig_line] = prefix + " " + b64(flip(raw, len(raw) - 1))
    return text + b"\n\n" + "\n".join(lines).encode()


@pytest.fixture(scope="module")
def interop_log(tmp_path_factory: pytest.TempPathFactory) -> Log:
    """A real log with one signed checkpoint at each of SIZES (one batch per checkpoint)."""
    base = tmp_path_factory.mktemp("interop")
    cfg = LogConfig(
        ledger_dir=base / "ledger",
        keys_dir=base / "keys",
        database_url=f"sqlite:///{base / 'ledger' / 'ledger.db'}",
        origin=ORIGIN,
    )
    init_log(cfg)
    log = Log.open(cfg)
    size = 0
    for target in SIZES:
        log.append_many(
            [{"type": "interop.test", "details": {"i": i, "pad": "x" * (i % 17)}}
             for i in range(size, target)]
        )
        size = target
    assert [s for s, _, _ in log.store.checkpoints()] == SIZES
    yield log
    log.close()


def full_input(log: Log) -> GoInput:
    notes = [note.encode() for _, _, note in log.store.checkpoints()]
    entries = [data for _, data, _ in log.store.entries(0, SIZES[-1])]
    rng = random.Random(20261123)
    inclusions = []
    for size in SIZES:
        indexes = set(range(size)) if size <= 64 else {0, 1, size // 2, size - 2, size - 1}
        indexes |= {rng.randrange(size) for _ in range(20)}
        for i in sorted(indexes):
            inclusions.append((size, i, entries[i], log.store.inclusion_proof(i, size)))
    consistencies = [
        (old, new, log.store.consistency_proof(old, new))
        for j, old in enumerate(SIZES)
        for new in SIZES[j:]
    ]
    return GoInput(log.verifier().vkey(), notes, entries, inclusions, consistencies)


def test_go_verifies_checkpoints_proofs_and_the_tree(tlogcheck: Path, interop_log: Log) -> None:
    data = full_input(interop_log)
    out = assert_ok(tlogcheck, data)
    n_incl, n_cons = len(data.inclusions), len(data.consistencies)
    assert f"OK checkpoints={len(SIZES)} entries=300 inclusion={n_incl} consistency={n_cons}" in out
    assert n_incl > 400 and n_cons == len(SIZES) * (len(SIZES) + 1) // 2


def test_go_rejects_one_changed_byte(tlogcheck: Path, interop_log: Log) -> None:
    good = full_input(interop_log)
    k = SIZES.index(13)
    note = good.notes[k]

    def notes_with(bad: bytes) -> list[bytes]:
        return [*good.notes[:k], bad, *good.notes[k + 1 :]]

    # the checkpoint's root line, its size line, and the signature
    for bad in (
        with_note_char_changed(note, 2),
        note.replace(b"\n13\n", b"\n14\n", 1),
        with_signature_byte_flipped(note),
    ):
        assert bad != note
        assert_fails(tlogcheck, replace(good, notes=notes_with(bad)), "note.Open")
    # a checkpoint from another key with the same name is not trusted
    impostor = Ed25519Signer.generate(ORIGIN)
    assert_fails(tlogcheck, replace(good, vkey=impostor.vkey()), "note.Open")

    # one byte of one hash of an inclusion proof, at several positions in several proofs
    for j in (0, len(good.inclusions) // 3, len(good.inclusions) - 1):
        size, index, entry, proof = good.inclusions[j]
        if not proof:
            continue
        for h in {0, len(proof) - 1}:
            bad = [*proof[:h], flip(proof[h], 31), *proof[h + 1 :]]
            assert_fails(
                tlogcheck,
                replace(good, inclusions=[(size, index, entry, bad)], consistencies=[]),
                f"inclusion of {index} in {size}",
            )
        # the entry itself changed by one byte
        assert_fails(
            tlogcheck,
            replace(good, inclusions=[(size, index, flip(entry, 0), proof)], consistencies=[]),
            f"inclusion of {index} in {size}",
        )

    # one byte of one hash of a consistency proof
    for j in (1, len(good.consistencies) // 2, len(good.consistencies) - 2):
        old, new, proof = good.consistencies[j]
        if not proof:
            continue
        bad = [flip(proof[0], 7), *proof[1:]]
        assert_fails(
            tlogcheck,
            replace(good, inclusions=[], consistencies=[(old, new, bad)]),
            f"consistency of {old} with {new}",
        )

    # one byte of one stored entry: the rebuilt tree no longer matches the signed roots
    entries = list(good.entries)
    entries[150] = flip(entries[150], 3)
    assert_fails(tlogcheck, replace(good, entries=entries), "the entries give root")


def test_go_accepts_a_checkpoint_carrying_a_witness_cosignature(
    tlogcheck: Path, interop_log: Log, tmp_path: Path
) -> None:
    """Go's note package does not know cosignatures (algorithm 0x04): note.Open must keep the
    line as an unverified signature and still accept the log's; our Go code then checks the
    cosignature itself with crypto/ed25519, as a second implementation of tlog-cosignature."""
    w, _ = Witness.init(tmp_path / "w", "regulator.test/witness", [interop_log.verifier().vkey()])
    cp, line = cosign_from_log(w, interop_log)
    assert cp.size == SIZES[-1]
    note = interop_log.checkpoint_with_cosignatures()
    assert note.decode().endswith(line) and len(split_note(note)[1]) == 2

    plain = GoInput(interop_log.verifier().vkey(), [note])
    out = assert_ok(tlogcheck, plain)
    assert f"checkpoint {SIZES[-1]} signed=1 unverified=1 cosigned=\n" in out

    cosigned = replace(plain, cosigners=[w.vkey()])
    out = assert_ok(tlogcheck, cosigned)
    assert f"checkpoint {SIZES[-1]} signed=1 unverified=1 cosigned=regulator.test/witness\n" in out

    # a changed cosignature byte: note.Open still accepts (unknown signer), our check does not
    bad = with_signature_byte_flipped(note, sig_line=1)
    assert_ok(tlogcheck, replace(plain, notes=[bad]))
    assert_fails(
        tlogcheck, replace(cosigned, notes=[bad]), "invalid cosignature by regulator.test/witness"
    )
    # and a checkpoint text changed under both signatures fails note.Open first
    assert parse_checkpoint(split_note(note)[0]).size == SIZES[-1]
    assert_fails(tlogcheck, replace(cosigned, notes=[with_note_char_changed(note, 2)]), "note.Open")
