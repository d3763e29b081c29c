"""The ledger service through FastAPI's TestClient, on a real SQLite log in a temporary directory.

Tiles are cross-checked against the exporter and against tlog-scales (an independent tlog-tiles
reader), proofs with our RFC 9162 verifiers, OpenAPI with openapi-spec-validator.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from ledger.checkpoint import open_checkpoint
from ledger.export import tile_data
from ledger.hashing import leaf_hash
from ledger.log import Log
from ledger.note import b64, unb64
from ledger.proofbundle import parse_tlog_proof
from ledger.proofs import verify_consistency, verify_inclusion
from ledger.service.main import create_app
from ledger.service.routes import checkpoints, entries, proofs, tiles
from ledger.tiles import tiles_for_size
from tests.ledger.logfactory import cosign, event, make_log

SIZES = [200, 100, 300, 150]  # 750 entries, several batches and checkpoints
N = sum(SIZES)


@pytest.fixture
def logdir(tmp_path: Path):
    cfg, vkey = make_log(tmp_path / "data", SIZES)
    return cfg, vkey


@pytest.fixture
def client(logdir):
    cfg, _ = logdir
    with TestClient(create_app(cfg, sequencer=False)) as c:
        yield c


def _latest(cfg):
    log = Log.open(cfg)
    try:
        return log, open_checkpoint(log.store.latest_checkpoint(), log.verifier())[0]
    except BaseException:
        log.close()
        raise


# --- tlog-tiles ---------------------------------------------------------------------------------


def test_checkpoint_endpoint_is_the_signed_note_with_short_cache(client, logdir) -> None:
    cfg, _ = logdir
    r = client.get("/checkpoint")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert r.headers["cache-control"] == "public, max-age=5"
    log, cp = _latest(cfg)
    try:
        assert r.content == log.checkpoint_with_cosignatures()
        assert open_checkpoint(r.content, log.verifier())[0].size == N
    finally:
        log.close()


def test_every_tile_is_served_as_stored_with_the_right_cache(client, logdir) -> None:
    cfg, _ = logdir
    log = Log.open(cfg)
    try:
        for tile in tiles_for_size(N):
            r = client.get("/" + tile.path)
            assert r.status_code == 200, tile.path
            assert r.content == tile_data(log, tile)
            full = tile.width == 256
            assert ("immutable" in r.headers["cache-control"]) == full, tile.path
    finally:
        log.close()


@pytest.mark.parametrize(
    "path",
    [
        "/tile/0/003",  # beyond the tree: only 2 full level-0 tiles (750 = 2·256 + 238)
        "/tile/0/002.p/239",  # wider than the right edge
        "/tile/entries/005",
        "/tile/1/000",  # level 1 has only 2 hashes
        "/tile/2/000.p/1",
        "/tile/0/0001",  # non-canonical spellings
        "/tile/0/x000/001",
        "/tile/0/001.p/256",
        "/tile/0/001.p/0",
        "/tile/0/001.p/007",
        "/tile/abc/000",
        "/tile/01/000",
        "/tile/entries/-01",
        "/tile/0/../checkpoint",
    ],
)
def test_tiles_beyond_the_tree_or_badly_spelled_are_404(client, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404, path
    assert r.json()["detail"]


def test_a_narrower_partial_tile_of_the_right_edge_is_served(client, logdir) -> None:
    full = client.get("/tile/0/002.p/238").content
    assert client.get("/tile/0/002.p/10").content == full[: 10 * 32]


def test_tlog_scales_reads_the_served_tiles_as_the_same_tree(client, logdir) -> None:
    from tlog_scales.reader import TilesReader

    class Backend:  # tlog-scales' HTTP backend interface over the TestClient
        def get(self, *path: str) -> bytes | None:
            r = client.get("/" + "/".join(path))
            return r.content if r.status_code == 200 else None

    cfg, _ = logdir
    log, cp = _latest(cfg)
    try:
        reader = TilesReader(Backend())
        theirs = reader.get_checkpoint()
        assert (theirs.size, theirs.root_hash) == (cp.size, cp.root)
        assert reader.calculate_root_hash() == cp.root
        for index in (0, 1, 255, 256, 511, 700, N - 1):
            proof = reader.get_inclusion_proof(index, N)
            assert proof.node_hashes == log.store.inclusion_proof(index, N)
            assert reader.get_entry(index) == log.store.entries(index, index + 1)[0][1]
        for old in (1, 200, 300, 600):
            assert reader.get_consistency_proof(old, N).node_hashes == log.store.consistency_proof(
                old, N
            )
    finally:
        log.close()


# --- JSON API -----------------------------------------------------------------------------------


def test_latest_checkpoint_json_has_cosignatures_with_witness_names_and_times(
    client, logdir
) -> None:
    cfg, _ = logdir
    log = Log.open(cfg)
    try:
        witness = cosign(log)
    finally:
        log.close()
    body = client.get("/api/v1/checkpoint").json()
    assert body["size"] == N and body["origin"] == cfg.origin
    [co] = body["cosignatures"]
    assert co["witness"] == witness.name
    assert co["key_id"] == f"{witness.key_id:08x}"
    assert co["verified"] is True
    assert co["time"] > 1_700_000_000 and co["time_utc"].endswith("Z")
    assert co["line"] in body["note"]
    # the text endpoint carries the same cosignature
    assert co["line"] in client.get("/checkpoint").text
    info = client.get("/api/v1/log").json()
    assert info["tree_size"] == N and info["witnesses"][0]["vkey"] == witness.vkey()


def test_checkpoint_list_pages_newest_first(client) -> None:
    first = client.get("/api/v1/checkpoints", params={"limit": 2}).json()
    sizes = [c["size"] for c in first["checkpoints"]]
    assert sizes[0] == N and sizes == sorted(sizes, reverse=True)
    rest = client.get("/api/v1/checkpoints", params={"before": first["next_before"]}).json()
    all_sizes = sizes + [c["size"] for c in rest["checkpoints"]]
    assert all_sizes == sorted(set(all_sizes), reverse=True)
    assert rest["next_before"] is None
    assert client.get(f"/api/v1/checkpoints/{sizes[1]}").json()["size"] == sizes[1]
    assert client.get("/api/v1/checkpoints/3").status_code == 404


def test_entries_are_decoded_paged_and_bounded(client) -> None:
    page = client.get("/api/v1/entries", params={"start": 740, "limit": 5}).json()
    assert page["tree_size"] == N and page["next_start"] == 745
    e = page["entries"][0]
    assert e["index"] == 740 and e["problem"] is None
    assert e["entry"]["details"] == event(740)["details"]
    last = client.get("/api/v1/entries", params={"start": 745, "limit": 1000}).json()
    assert [x["index"] for x in last["entries"]] == list(range(745, N))
    assert last["next_start"] is None
    assert client.get("/api/v1/entries", params={"limit": 1001}).status_code == 422
    assert client.get("/api/v1/entries", params={"start": -1}).status_code == 422
    r = client.get("/api/v1/entries", params={"start": N + 1})
    assert r.status_code == 404 and str(N) in r.json()["detail"]
    assert client.get("/api/v1/entries/3").json()["index"] == 3
    assert client.get(f"/api/v1/entries/{N}").status_code == 404


def test_inclusion_proofs_verify_json_and_tlog_proof_bundle(client, logdir) -> None:
    cfg, _ = logdir
    log, cp = _latest(cfg)
    try:
        for index in (0, 299, N - 1):
            p = client.get(f"/api/v1/proofs/inclusion/{index}").json()
            data = log.store.entries(index, index + 1)[0][1]
            assert p["leaf_hash"] == b64(leaf_hash(data)) and p["tree_size"] == N
            verify_inclusion(
                leaf_hash(data), index, N, [unb64(h, "h") for h in p["hashes"]], cp.root
            )
            text = client.get(f"/api/v1/proofs/inclusion/{index}/tlog-proof").text
            bundle = parse_tlog_proof(text)
            bcp, _ = open_checkpoint(bundle.checkpoint, log.verifier())
            verify_inclusion(leaf_hash(data), bundle.index, bcp.size, bundle.hashes, bcp.root)
        # at an older signed size
        older = client.get("/api/v1/checkpoints", params={"limit": 3}).json()["checkpoints"][-1]
        p = client.get("/api/v1/proofs/inclusion/5", params={"size": older["size"]}).json()
        assert p["tree_size"] == older["size"] and p["root"] == older["root"]
    finally:
        log.close()


def test_consistency_proof_verifies(client, logdir) -> None:
    cfg, _ = logdir
    log, cp = _latest(cfg)
    try:
        for old in (1, 200, 300, 600, N):
            p = client.get("/api/v1/proofs/consistency", params={"old": old}).json()
            assert p["new_size"] == N and p["new_root"] == b64(cp.root)
            verify_consistency(
                old, N, [unb64(h, "h") for h in p["hashes"]], unb64(p["old_root"], "r"), cp.root
            )
    finally:
        log.close()


@pytest.mark.parametrize(
    "url, status, words",
    [
        (f"/api/v1/proofs/inclusion/{N}", 404, "not in the signed tree"),
        ("/api/v1/proofs/inclusion/1?size=7", 404, "no checkpoint at size 7"),
        ("/api/v1/proofs/consistency?old=5&new=3", 404, "no checkpoint at size 3"),
        (f"/api/v1/proofs/consistency?old={N + 1}", 400, "old size must be"),
        ("/api/v1/proofs/consistency?old=0", 422, ""),
    ],
)
def test_proof_errors_are_clear(client, url: str, status: int, words: str) -> None:
    r = client.get(url)
    assert r.status_code == status
    assert words in str(r.json()["detail"])


def test_tampered_entry_shows_in_entries_and_proofs_fail_closed(client, logdir) -> None:
    cfg, _ = logdir
    db = cfg.database_url.split("///", 1)[1]
    with closing(sqlite3.connect(db)) as conn, conn:
        data = conn.execute("SELECT data FROM ledger_entries WHERE idx = 42").fetchone()[0]
        conn.execute(
            "UPDATE ledger_entries SET data = ? WHERE idx = 42",
            (data.replace(b'"n":42', b'"n":43'),),
        )
    e = client.get("/api/v1/entries/42").json()
    assert "altered" in e["problem"]
    r = client.get("/api/v1/proofs/inclusion/42")
    assert r.status_code == 500 and "entry 42" in r.json()["detail"]
    assert client.get("/api/v1/proofs/inclusion/41").status_code == 200


def test_errors_leak_no_secrets(client, logdir) -> None:
    cfg, _ = logdir
    skey = cfg.key_path.read_text().strip()
    for url in (
        "/api/v1/proofs/inclusion/99999",
        "/tile/9/999",
        "/api/v1/checkpoints/1",
        "/api/v1/entries?start=99999",
    ):
        text = client.get(url).text
        assert skey not in text and "PRIVATE" not in text and str(cfg.keys_dir) not in text


def test_cosignatures_handed_back_by_a_registered_witness_are_kept(client, logdir) -> None:
    from ledger.note import ALG_COSIGNATURE_V1, Ed25519Signer, signature_for, split_note

    cfg, _ = logdir
    witness = Ed25519Signer.generate("pull.example/witness", ALG_COSIGNATURE_V1)
    note = client.get("/checkpoint").content
    text = split_note(note)[0]
    cosigned = note + signature_for(text, witness).line.encode()
    r = client.post("/api/v1/cosignatures", content=cosigned)
    assert r.status_code == 400 and "registered witness" in r.json()["detail"]
    log = Log.open(cfg)
    try:
        log.store.add_witness(witness.name, witness.vkey(), None)
    finally:
        log.close()
    r = client.post("/api/v1/cosignatures", content=cosigned)
    assert r.status_code == 200 and r.json()["size"] == N
    assert client.get("/api/v1/checkpoint").json()["cosignatures"][0]["witness"] == witness.name
    r = client.post("/api/v1/cosignatures", content=b"not a note")
    assert r.status_code == 400


# --- the application ------------------------------------------------------------------------------


def test_openapi_is_valid_and_every_route_declares_its_response(client) -> None:
    validate(client.get("/openapi.json").json())
    for module in (tiles, checkpoints, entries, proofs):
        for route in module.router.routes:
            assert isinstance(route, APIRoute)
            cls = getattr(route.response_class, "value", route.response_class)  # default: JSON
            raw = cls.__name__ in ("Response", "PlainTextResponse")
            assert route.response_model is not None or raw, route.path
            if raw:  # text and binary answers document their media type instead
                assert route.responses[200]["content"], route.path


def test_there_is_no_public_append_route(client) -> None:
    for path in ("/api/v1/entries", "/api/v1/append", "/add-entries"):
        assert client.post(path, json=event(1)).status_code in (404, 405)
    assert client.get("/api/v1/checkpoint").json()["size"] == N


def test_service_runs_under_a_prefix(logdir) -> None:
    cfg, _ = logdir
    with TestClient(create_app(cfg, sequencer=False, prefix="/services/ledger/")) as c:
        assert c.get("/services/ledger/checkpoint").status_code == 200
        assert c.get("/services/ledger/tile/0/000").status_code == 200
        assert c.get("/services/ledger/api/v1/entries/0").status_code == 200
        assert c.get("/checkpoint").status_code == 404
        spec = c.get("/services/ledger/openapi.json").json()
        validate(spec)
        assert all(p.startswith("/services/ledger/") for p in spec["paths"])


def test_sequencer_lifespan_batches_other_processes_appends_through_its_socket(logdir) -> None:
    cfg, _ = logdir
    with TestClient(create_app(cfg, sequencer=True)) as c:
        assert cfg.socket_path.exists()
        other = Log.open(cfg)  # as another service of the platform would
        try:
            indexes = other.append_many([event(i, "via-socket") for i in range(5)])
            assert other.appender().remote
        finally:
            other.close()
        assert indexes == list(range(N, N + 5))
        assert c.get("/api/v1/checkpoint").json()["size"] == N + 5
        assert c.get(f"/api/v1/entries/{N}").json()["entry"]["details"]["tag"] == "via-socket"
    assert not cfg.socket_path.exists()


def test_the_service_keeps_the_subject_index_up_with_the_log(logdir) -> None:
    """No page asks for the index, yet it follows the appends (the keeper thread)."""
    from ledger.index import SubjectIndex

    cfg, _ = logdir
    with TestClient(create_app(cfg, sequencer=True)):
        other = Log.open(cfg)
        try:
            other.append_many([{**event(i, "indexed"), "dataset": "residents"} for i in range(3)])
        finally:
            other.close()
        index = SubjectIndex(cfg.database_url)
        try:
            deadline = time.monotonic() + 60
            while index.indexed() < N + 3:
                assert time.monotonic() < deadline, "the index did not follow the log"
                time.sleep(0.1)
            with index.reader.connect() as conn:
                rows = conn.exec_driver_sql("SELECT idx FROM ledger_subjects WHERE key = 'dataset'"
                                            " AND value = 'residents' ORDER BY idx").fetchall()
            assert [r[0] for r in rows] == [N, N + 1, N + 2]
        finally:
            index.close()
