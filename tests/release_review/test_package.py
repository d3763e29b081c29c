"""Release packages verify offline, and stop verifying when anything in them changes.

One package is made through the real workflow (two reviewers, 重要 data) in a ledger of the
module's own; every test then works on its bytes only, as a recipient would, with the log's
verifier key and no server. Tampering is tried as an attacker would: single bytes anywhere in
the zip, and consistent re-sealed zips with a changed file, manifest, entry or proof.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ledger.note import Ed25519Signer
from ledger.proofbundle import format_tlog_proof, parse_tlog_proof
from release_review.exceptions import PackageVerificationError
from release_review.package import (
    CHECKPOINT,
    ENTRY,
    MANIFEST,
    NOTE,
    PROOF,
    layout,
    seal,
    verify_package,
)
from release_review.states import ReleaseStatus
from tests.factories import create_release_at_status
from tests.release_review.review_support import ALICE, open_env

SHUYU = str(Path(sys.executable).parent / "shuyu")


@pytest.fixture(scope="module")
def package(world, tmp_path_factory) -> dict:
    directory = tmp_path_factory.mktemp("package")
    env = open_env(world, directory)
    try:
        request = create_release_at_status(env, ReleaseStatus.RELEASED, important=True)
        _, data = env.service.download(ALICE, request.id)
        vkey = env.log.verifier().vkey()
    finally:
        env.close()
    path = directory / "release.zip"
    path.write_bytes(data)
    return {"data": data, "vkey": vkey, "path": path, "id": request.id, "dir": directory}


def members(data: bytes) -> list[tuple[str, bytes]]:
    z = zipfile.ZipFile(io.BytesIO(data))
    return [(i.filename, z.read(i)) for i in z.infolist()], z.comment


def resealed(data: bytes, change: dict[str, bytes]) -> bytes:
    items, comment = members(data)
    return seal([(n, change.get(n, d)) for n, d in items], comment)


def test_a_released_package_verifies_offline(package) -> None:
    result = verify_package(package["data"], package["vkey"])
    assert result.release == package["id"]
    assert [f["name"] for f in result.files] == ["by_sex.csv"]
    assert result.tree_size > result.ledger_index
    names = [n for n, _ in members(package["data"])[0]]
    assert names == layout(["by_sex.csv"])
    assert names[:2] == [MANIFEST, NOTE] and names[-3:] == [ENTRY, PROOF, CHECKPOINT]


def test_the_cli_verifies_with_the_vkey_or_its_file(package) -> None:
    vkey_file = package["dir"] / "log.vkey"
    vkey_file.write_text(package["vkey"] + "\n")
    for vkey in (package["vkey"], str(vkey_file)):
        out = subprocess.run([SHUYU, "release", "verify-package", str(package["path"]),
                              "--vkey", vkey],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith(f"OK: release {package['id']}")


def test_changing_any_single_byte_fails(package) -> None:
    data = package["data"]
    passed = []
    for i in range(len(data)):
        flipped = bytearray(data)
        flipped[i] ^= 0x01
        try:
            verify_package(bytes(flipped), package["vkey"])
        except PackageVerificationError:
            continue
        passed.append(i)
    assert passed == [], f"byte(s) {passed[:10]} could change without failing verification"


def test_the_cli_fails_on_a_changed_byte(package, tmp_path: Path) -> None:
    data = bytearray(package["data"])
    offset = data.index(b"people")  # inside files/by_sex.csv
    data[offset] ^= 0x20
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bytes(data))
    out = subprocess.run([SHUYU, "release", "verify-package", str(bad), "--vkey",
                          package["vkey"]],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert out.stderr.startswith("error: package does not verify")


def test_a_changed_file_with_a_matching_manifest_is_caught_by_the_ledger_entry(package) -> None:
    items, _ = members(package["data"])
    content = dict(items)
    manifest = json.loads(content[MANIFEST])
    new_csv = content["files/by_sex.csv"] + b'"?",3\n'
    import hashlib

    manifest["files"][0]["sha256"] = hashlib.sha256(new_csv).hexdigest()
    forged = resealed(package["data"], {
        "files/by_sex.csv": new_csv,
        MANIFEST: (json.dumps(manifest, ensure_ascii=False, indent=2) + "\n").encode()})
    with pytest.raises(PackageVerificationError, match="not the one the ledger entry names") as e:
        verify_package(forged, package["vkey"])
    assert e.value.member == MANIFEST


def test_a_rewritten_ledger_entry_is_caught_by_the_proof(package) -> None:
    items, _ = members(package["data"])
    entry = json.loads(dict(items)[ENTRY])
    entry["actor"] = "someone-else"
    import rfc8785

    forged = resealed(package["data"], {ENTRY: rfc8785.dumps(entry)})
    with pytest.raises(PackageVerificationError, match="not in the checkpointed log"):
        verify_package(forged, package["vkey"])


def test_a_checkpoint_signed_by_another_key_is_refused(package) -> None:
    other = Ed25519Signer.generate(json.loads('"shuyu.test/review"'))
    with pytest.raises(PackageVerificationError, match="does not verify"):
        verify_package(package["data"], other.vkey())


def test_a_proof_for_another_index_is_refused(package) -> None:
    items, _ = members(package["data"])
    proof = parse_tlog_proof(dict(items)[PROOF].decode())
    moved = format_tlog_proof(proof.index - 1, proof.hashes, proof.checkpoint)
    forged = resealed(package["data"], {PROOF: moved.encode()})
    with pytest.raises(PackageVerificationError, match="not in the checkpointed log"):
        verify_package(forged, package["vkey"])


def test_an_extra_or_missing_member_breaks_the_layout(package) -> None:
    items, comment = members(package["data"])
    extra = seal([*items, ("files/extra.csv", b"a\n1\n")], comment)
    with pytest.raises(PackageVerificationError, match="not the sealed layout"):
        verify_package(extra, package["vkey"])
    fewer = seal([(n, d) for n, d in items if n != NOTE], comment)
    with pytest.raises(PackageVerificationError, match="not the sealed layout"):
        verify_package(fewer, package["vkey"])


def test_a_re_zipped_package_is_not_sealed(package) -> None:
    items, _ = members(package["data"])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in items:
            z.writestr(name, data)
    with pytest.raises(PackageVerificationError, match="sealed form"):
        verify_package(out.getvalue(), package["vkey"])


@pytest.mark.parametrize("cut", [0, 10, 1000])
def test_a_truncated_package_is_not_a_zip(package, cut) -> None:
    with pytest.raises(PackageVerificationError, match="not a readable zip"):
        verify_package(package["data"][:cut], package["vkey"])
