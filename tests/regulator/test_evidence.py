"""Evidence bundles: made from the console and the CLI, checked offline by `shuyu ledger evidence
verify` and by Go's golang.org/x/mod; any changed byte makes the check fail."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from ledger.evidence import canonical_zip, verify_evidence
from ledger.exceptions import FormatError, VerificationError
from ledger.note import parse_vkey
from tests.ledger.logfactory import SHUYU

GOPATH = "/usr/share/gocode"


def _files(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {n: z.read(n) for n in z.namelist()}


def _zip(files: dict[str, bytes]) -> bytes:
    """Re-pack as the platform does, so the checks below the zip's own are what is tested."""
    return canonical_zip(list(files.items()))


def _flip(data: bytes, pos: int) -> bytes:
    return data[:pos] + bytes([data[pos] ^ 0x01]) + data[pos + 1:]


@pytest.fixture
def bundle(client) -> bytes:
    r = client.get("/console/evidence.zip", params={"type": "release.*"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    return r.content


def test_filter_bundle_verifies_and_holds_exactly_the_filtered_entries(bundle, client,
                                                                       history) -> None:
    report = verify_evidence(bundle, parse_vkey(history.vkey))
    listed = client.get("/console/api/events", params={"type": "release.*", "limit": 200}).json()
    assert sorted(report.indexes) == sorted(e["index"] for e in listed["events"])
    files = _files(bundle)
    assert {"README.md", "checkpoint", "vkey", "manifest.json", "go/main.go"} <= set(files)
    assert history.vkey in files["README.md"].decode()
    assert "shuyu ledger evidence verify" in files["README.md"].decode()
    assert "tlog.CheckRecord" in files["README.md"].decode()


@pytest.mark.parametrize("member", ["entry", "proof", "checkpoint"])
def test_one_changed_byte_inside_a_member_fails(bundle, history, member) -> None:
    files = _files(bundle)
    name = {"entry": next(n for n in files if n.startswith("entries/")),
            "proof": next(n for n in files if n.startswith("proofs/")),
            "checkpoint": "checkpoint"}[member]
    body = files[name]
    if member == "entry":
        pos = len(body) // 2
    elif member == "proof":
        pos = body.index(b"\n", 30) - 3  # inside the first base64 hash of the path
    else:
        pos = body.index(b"\n") + 1  # the tree size
    files[name] = _flip(body, pos)
    # the manifest's hash would catch it first; recompute it, as a forger would
    import hashlib
    import json

    manifest = json.loads(files["manifest.json"])
    manifest["sha256"][name] = hashlib.sha256(files[name]).hexdigest()
    files["manifest.json"] = json.dumps(manifest).encode()
    with pytest.raises((VerificationError, FormatError)):
        verify_evidence(_zip(files), parse_vkey(history.vkey))


def test_every_single_byte_flip_of_the_zip_is_caught(client, history) -> None:
    """A changed byte anywhere in the file (data, CRC, names, times, directory) is refused."""
    bundle = client.get("/console/evidence.zip", params={"index": history.released_index}).content
    assert verify_evidence(bundle, parse_vkey(history.vkey)).indexes == [history.released_index]
    for pos in range(len(bundle)):
        with pytest.raises((VerificationError, FormatError)):
            verify_evidence(_flip(bundle, pos), parse_vkey(history.vkey))


def test_the_wrong_key_and_an_absent_witness_are_refused(bundle, history, tmp_path) -> None:
    from ledger.witness import Witness

    other = Witness.init(tmp_path / "w", "other.example/witness", [history.vkey])[0]
    with pytest.raises(VerificationError, match="cosignature by other.example/witness"):
        verify_evidence(bundle, parse_vkey(history.vkey), [parse_vkey(other.vkey())])
    from ledger.keys import load_or_create_key

    stranger = load_or_create_key(tmp_path / "k", "shuyu.local/ledger")[0]
    with pytest.raises(VerificationError, match="trusted key"):
        verify_evidence(bundle, parse_vkey(stranger.vkey()))


def test_cli_verifies_a_bundle_and_fails_on_one_changed_byte(bundle, history, tmp_path) -> None:
    path = tmp_path / "evidence.zip"
    path.write_bytes(bundle)
    ok = subprocess.run([*SHUYU, "ledger", "evidence", "verify", str(path), "--vkey",
                         history.vkey], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert re.match(r"OK \d+ entries proven in shuyu.local/ledger at tree size \d+", ok.stdout)
    files = _files(bundle)
    name = next(n for n in files if n.startswith("entries/"))
    files[name] = _flip(files[name], 5)
    path.write_bytes(_zip(files))
    bad = subprocess.run([*SHUYU, "ledger", "evidence", "verify", str(path), "--vkey",
                          history.vkey], capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.startswith("error: ")
    assert "sha256" in bad.stderr or "not proven" in bad.stderr


def test_cli_exports_a_filter_as_the_console_does(history, tmp_path) -> None:
    out = tmp_path / "b.zip"
    env = {**os.environ, "SHUYU_DATA_DIR": str(history.world.data_dir)}
    r = subprocess.run([*SHUYU, "ledger", "evidence", "export", str(out), "--type",
                        "query.denied", "--analyst", "bob"], capture_output=True, text=True,
                       env=env)
    assert r.returncode == 0, r.stderr
    report = verify_evidence(out.read_bytes(), parse_vkey(history.vkey))
    assert len(report.indexes) == sum(history.denied_counts.values())
    bad = subprocess.run([*SHUYU, "ledger", "evidence", "export", str(out), "--since", "soon"],
                         capture_output=True, text=True, env=env)
    assert bad.returncode == 1 and "since" in bad.stderr


def test_selected_entries_bundle_needs_the_form_token(client, history) -> None:
    page = client.get("/console/events", params={"type": "query.denied"})
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)
    chosen = re.findall(r'name="index" value="(\d+)"', page.text)[:2]
    r = client.post("/console/evidence", data={"csrf": csrf, "index": chosen})
    assert r.status_code == 200
    assert verify_evidence(r.content, parse_vkey(history.vkey)).indexes == sorted(map(int, chosen))
    forged = client.post("/console/evidence", data={"csrf": "0" * 64, "index": chosen},
                         params={"lang": "en"})
    assert forged.status_code == 403 and "did not come from this console" in forged.text
    empty = client.post("/console/evidence", data={"csrf": csrf}, params={"lang": "en"})
    assert empty.status_code == 400 and "no entries are selected" in empty.text
    junk = client.post("/console/evidence", data={"csrf": csrf, "index": ["1", "x"]},
                       params={"lang": "en"})
    assert junk.status_code == 400 and "whole numbers" in junk.text


@pytest.mark.golang
def test_go_x_mod_verifies_the_bundle_and_fails_on_one_changed_byte(bundle, history,
                                                                     tmp_path) -> None:
    go = shutil.which("go")
    if go is None or not Path(GOPATH, "src/golang.org/x/mod/sumdb/note").is_dir():
        pytest.fail("Go and golang.org/x/mod are needed: run deploy/bootstrap/test-deps.sh")
    root = tmp_path / "evidence"
    with zipfile.ZipFile(io.BytesIO(bundle)) as z:
        z.extractall(root)
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": GOPATH, "GOFLAGS": "", "GOPROXY": "off",
           "CGO_ENABLED": "0", "GOCACHE": str(tmp_path / "gocache")}
    binary = tmp_path / "evidencecheck"
    build = subprocess.run([go, "build", "-o", str(binary), "."], cwd=root / "go", env=env,
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    ok = subprocess.run([str(binary), history.vkey, str(root)], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.startswith("OK "), ok.stdout
    entry = next((root / "entries").iterdir())
    entry.write_bytes(_flip(entry.read_bytes(), 10))
    bad = subprocess.run([str(binary), history.vkey, str(root)], capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stdout.startswith("FAIL:"), bad.stdout
