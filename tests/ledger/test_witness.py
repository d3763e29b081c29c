"""Witnesses (C2SP tlog-witness / tlog-cosignature): the pure checks, the witness's state, the
HTTP server on 127.0.0.1, the log's pusher, forks refused, pull mode and the CLI verbs."""

from __future__ import annotations

import base64
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import httpx
import pytest
import uvicorn
from click.testing import CliRunner, Result

from ledger.checkpoint import Checkpoint, open_checkpoint, parse_checkpoint, sign_checkpoint
from ledger.cli import ledger as ledger_cli
from ledger.exceptions import FormatError, LedgerError
from ledger.log import Log, LogConfig, init_log
from ledger.note import (
    ALG_COSIGNATURE_V1,
    Ed25519Signer,
    b64,
    open_note,
    parse_signature_line,
    parse_vkey,
    split_note,
)
from ledger.proofs import prove_consistency
from ledger.store import MemoryStore
from ledger.witness import (
    MAX_PROOF_LINES,
    SIZE_CONTENT_TYPE,
    BadConsistencyProof,
    BadLogSignature,
    ConflictingRoot,
    MalformedRequest,
    OldSizeTooLarge,
    StaleOldSize,
    UnknownLog,
    Witness,
    check_against_latest,
    cosignature_time,
    format_add_checkpoint,
    identify_checkpoint,
    parse_add_checkpoint,
)
from ledger.witness_client import (
    WitnessPusher,
    WitnessRefused,
    push_checkpoint,
    read_refusals,
    register_witness,
    registered_witnesses,
)
from ledger.witness_pull import cosign_from_log
from ledger.witness_server import create_app

ORIGIN = "example.test/ledger"
WITNESS_NAME = "regulator.example/witness"

# --- helpers -----------------------------------------------------------------------------------


def tree(n: int, tag: bytes = b"") -> MemoryStore:
    store = MemoryStore()
    for i in range(n):
        store.append(tag + b"entry %d" % i)
    return store


def signed(signer: Ed25519Signer, store: MemoryStore, size: int | None = None) -> bytes:
    size = store.size if size is None else size
    return sign_checkpoint(Checkpoint(signer.name, size, tree_root(store, size)), signer)


def tree_root(store: MemoryStore, size: int) -> bytes:
    from ledger.proofs import tree_hash

    return tree_hash(size, store)


def log_config(base: Path, origin: str = ORIGIN) -> LogConfig:
    return LogConfig(
        ledger_dir=base / "ledger",
        keys_dir=base / "keys",
        database_url=f"sqlite:///{base / 'ledger' / 'ledger.db'}",
        origin=origin,
    )


def make_log(base: Path, origin: str = ORIGIN, key_from: Log | None = None) -> Log:
    cfg = log_config(base, origin)
    if key_from is not None:  # the same signing key: a second copy of the same log
        cfg.keys_dir.mkdir(parents=True, mode=0o700)
        shutil.copy2(key_from.config.key_path, cfg.key_path)
    init_log(cfg)
    return Log.open(cfg)


def append(log: Log, n: int, tag: str = "a") -> None:
    log.append_many([{"type": "test.event", "details": {"tag": tag, "i": i}} for i in range(n)])


def latest_cp(log: Log) -> Checkpoint:
    return parse_checkpoint(split_note(log.store.latest_checkpoint())[0])


class ServerThread:
    """A real uvicorn server for an ASGI app on 127.0.0.1, on a free port, in a thread."""

    def __init__(self, app, lifespan: str = "off"):  # type: ignore[no-untyped-def]
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", lifespan=lifespan)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> "ServerThread":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()


@pytest.fixture
def log(tmp_path: Path) -> Log:
    lg = make_log(tmp_path / "log")
    yield lg
    lg.close()


@pytest.fixture
def witness(tmp_path: Path, log: Log) -> Witness:
    w, created = Witness.init(tmp_path / "witness", WITNESS_NAME, [log.verifier().vkey()])
    assert created
    return w


@pytest.fixture
def server(witness: Witness) -> ServerThread:
    with ServerThread(create_app(witness, "/w")) as srv:
        yield srv


def post(url: str, body: bytes) -> httpx.Response:
    with httpx.Client(trust_env=False, timeout=30) as client:
        return client.post(url + "/w/add-checkpoint", content=body)


# --- the request body --------------------------------------------------------------------------

SPEC_EXAMPLE = (
    "old 20852014\n"
    "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n"
    "jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n"
    "5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n"
    "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n"
    "\n"
    "example.com/behind-the-sofa\n"
    "20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    "\n"
    "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
    "— example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=\n"
).encode()


def test_parses_the_spec_example_and_formats_it_back() -> None:
    req = parse_add_checkpoint(SPEC_EXAMPLE)
    assert req.old_size == 20852014
    assert len(req.proof) == 4 and all(len(h) == 32 for h in req.proof)
    text, sigs = split_note(req.checkpoint)
    assert parse_checkpoint(text).size == 20852163 and len(sigs) == 2
    assert format_add_checkpoint(req.old_size, req.proof, req.checkpoint) == SPEC_EXAMPLE


@pytest.mark.parametrize(
    "body, reason",
    [
        (b"old 5\nexample\n", "no empty line"),
        (b"old 05\n\ncp", "leading zeros"),
        (b"old -1\n\ncp", "decimal"),
        (b"old 1 \n\ncp", "decimal"),
        (b"new 1\n\ncp", "first line"),
        (b"old 1\nnot base64!\n\ncp", "base64"),
        (b"old 1\nAAAA\n\ncp", "not 32"),
        (b"old 1\n\xe2\x80\x94\n\ncp", "ASCII"),
        (b"old 0\n\n", "no checkpoint"),
        (b"old 1\n" + b"A" * 43 + b"=\n" * 64 + b"\ncp", "at most 63"),
        (b"old 1\n\n" + b"x" * 70000, "larger than"),
    ],
)
def test_malformed_requests_are_400(body: bytes, reason: str) -> None:
    with pytest.raises(MalformedRequest, match=reason) as e:
        parse_add_checkpoint(body)
    assert e.value.http_status == 400


def test_the_log_side_never_formats_more_than_63_proof_lines() -> None:
    with pytest.raises(FormatError):
        format_add_checkpoint(1, [b"\0" * 32] * (MAX_PROOF_LINES + 1), b"cp\n")


# --- identifying the log: 404 and 403 ----------------------------------------------------------


def test_unknown_origin_is_404_and_untrusted_key_is_403() -> None:
    log_key = Ed25519Signer.generate(ORIGIN)
    impostor = Ed25519Signer.generate(ORIGIN)  # same name, another key
    other_log = Ed25519Signer.generate("other.test/log")
    trusted = {ORIGIN: [log_key.verifier()]}
    store = tree(5)

    cp, note = identify_checkpoint(signed(log_key, store), trusted)
    assert cp.size == 5 and len(note.sigs) == 1

    with pytest.raises(UnknownLog) as e:
        identify_checkpoint(signed(other_log, store), trusted)
    assert e.value.http_status == 404
    with pytest.raises(BadLogSignature) as e:
        identify_checkpoint(signed(impostor, store), trusted)
    assert e.value.http_status == 403


def test_unknown_signatures_are_ignored_but_a_bad_trusted_one_is_403() -> None:
    log_key = Ed25519Signer.generate(ORIGIN)
    stranger = Ed25519Signer.generate("stranger.example")
    from ledger.note import sign_note
    from ledger.checkpoint import format_checkpoint

    text = format_checkpoint(Checkpoint(ORIGIN, 3, tree(3).root()))
    both = sign_note(text, stranger, log_key)
    cp, note = identify_checkpoint(both, {ORIGIN: [log_key.verifier()]})
    assert [s.name for s in note.sigs] == [ORIGIN] and len(note.unverified) == 1

    good = signed(log_key, tree(3))
    body, sigline = good.split(b"\n\n")
    forged = body.replace(b"\n3\n", b"\n4\n") + b"\n\n" + sigline
    with pytest.raises(BadLogSignature):
        identify_checkpoint(forged, {ORIGIN: [log_key.verifier()]})


# --- the consistency checks (pure, table-driven) -----------------------------------------------


def cp_of(store: MemoryStore, size: int, origin: str = ORIGIN) -> Checkpoint:
    return Checkpoint(origin, size, tree_root(store, size))


def test_check_against_latest_table() -> None:
    a, b = tree(20), tree(20, tag=b"fork ")
    latest = cp_of(a, 5)
    proof_5_9 = prove_consistency(5, 9, a)
    bad = [bytes([proof_5_9[0][0] ^ 1]) + proof_5_9[0][1:], *proof_5_9[1:]]

    ok = [
        (0, [], cp_of(a, 5), None),  # first contact: trust on first use, empty proof
        (5, proof_5_9, cp_of(a, 9), latest),
        (5, [], cp_of(a, 5), latest),  # same checkpoint again: cosigned again
    ]
    for old, proof, cp, cur in ok:
        check_against_latest(old, proof, cp, cur)

    refused = [
        (6, [], cp_of(a, 5), latest, OldSizeTooLarge, 400),
        (0, [], cp_of(a, 9), latest, StaleOldSize, 409),
        (3, [], cp_of(a, 9), latest, StaleOldSize, 409),
        (9, [], cp_of(a, 9), None, StaleOldSize, 409),
        (5, [], cp_of(b, 5), latest, ConflictingRoot, 409),  # a fork of the same size
        (5, proof_5_9, cp_of(b, 9), latest, BadConsistencyProof, 422),
        (5, prove_consistency(5, 9, b), cp_of(b, 9), latest, BadConsistencyProof, 422),
        (5, bad, cp_of(a, 9), latest, BadConsistencyProof, 422),
        (5, proof_5_9[:-1], cp_of(a, 9), latest, BadConsistencyProof, 422),
        (5, [], cp_of(a, 9), latest, BadConsistencyProof, 422),
        (5, proof_5_9, cp_of(a, 5), latest, BadConsistencyProof, 422),
        (0, proof_5_9, cp_of(a, 9), None, BadConsistencyProof, 422),
    ]
    for old, proof, cp, cur, error, status in refused:
        with pytest.raises(error) as e:
            check_against_latest(old, proof, cp, cur)
        assert e.value.http_status == status, (old, cp.size, error)
        if status == 409:
            assert e.value.latest_size == (cur.size if cur else 0)


def test_every_honest_extension_is_accepted() -> None:
    a = tree(40)
    for m in range(1, 40):
        for n in range(m, 41):
            check_against_latest(m, prove_consistency(m, n, a), cp_of(a, n), cp_of(a, m))


# --- the witness's state -----------------------------------------------------------------------


def test_init_creates_a_private_cosigner_key_and_is_idempotent(tmp_path: Path, log: Log) -> None:
    wdir = tmp_path / "w"
    w, created = Witness.init(wdir, WITNESS_NAME, [log.verifier().vkey()])
    assert created
    assert os.stat(w.key_path).st_mode & 0o777 == 0o600
    v = parse_vkey(w.vkey())
    assert v.alg == ALG_COSIGNATURE_V1 and v.name == WITNESS_NAME
    assert (wdir / "witness.vkey").read_text().strip() == w.vkey()
    again, created = Witness.init(wdir, WITNESS_NAME, [log.verifier().vkey()])
    assert not created and again.vkey() == w.vkey()
    assert (wdir / "logs.vkeys").read_text().split() == [log.verifier().vkey()]
    with pytest.raises(LedgerError, match="named"):
        Witness.init(wdir, "someone.else/witness", [])
    with pytest.raises(LedgerError, match="Ed25519 log key"):
        Witness.init(wdir, WITNESS_NAME, [w.vkey()])  # a cosigner key is not a log key


def test_cosign_records_state_durably_and_it_survives_a_restart(log: Log, witness: Witness) -> None:
    append(log, 7)
    note = log.store.latest_checkpoint()
    line = witness.add_checkpoint(format_add_checkpoint(0, [], note))
    cp_text = split_note(note)[0]
    # the answer is a valid tlog-cosignature v1 line by the witness key
    opened = open_note((cp_text + "\n" + line).encode(), [parse_vkey(witness.vkey())])
    assert [s.name for s in opened.sigs] == [WITNESS_NAME]

    restarted = Witness(witness.dir)
    state = restarted.latest(ORIGIN)
    assert state.checkpoint.size == 7
    cp, n = open_checkpoint(state.note, log.verifier(), [parse_vkey(witness.vkey())])
    assert len(n.sigs) == 2  # the log's signature and the cosignature

    append(log, 5)
    note2 = log.store.latest_checkpoint()
    proof = log.store.consistency_proof(7, 12)
    restarted.add_checkpoint(format_add_checkpoint(7, proof, note2))
    assert Witness(witness.dir).latest(ORIGIN).checkpoint.size == 12
    # the old checkpoint cannot roll the witness back
    with pytest.raises(StaleOldSize):
        restarted.add_checkpoint(format_add_checkpoint(7, [], note))
    with pytest.raises(OldSizeTooLarge):
        restarted.add_checkpoint(format_add_checkpoint(12, [], note))
    assert Witness(witness.dir).latest(ORIGIN).checkpoint.size == 12


# --- over HTTP ---------------------------------------------------------------------------------


def test_http_statuses_exactly_per_spec(
    tmp_path: Path, log: Log, witness: Witness, server: ServerThread
) -> None:
    append(log, 3)
    first = log.store.latest_checkpoint()
    ok = post(server.url, format_add_checkpoint(0, [], first))
    assert ok.status_code == 200
    assert ok.text.startswith("— " + WITNESS_NAME + " ") and ok.text.endswith("\n")

    append(log, 4)
    note = log.store.latest_checkpoint()
    proof = log.store.consistency_proof(3, 7)

    stale = post(server.url, format_add_checkpoint(1, [], note))
    assert stale.status_code == 409
    assert stale.headers["content-type"] == SIZE_CONTENT_TYPE
    assert stale.text == "3\n"

    too_old = post(server.url, format_add_checkpoint(8, [], note))
    assert too_old.status_code == 400

    bad_proof = [bytes(32)] * len(proof)
    assert post(server.url, format_add_checkpoint(3, bad_proof, note)).status_code == 422

    assert post(server.url, b"old 3\nnot a request").status_code == 400

    other = make_log(tmp_path / "other", origin="other.test/ledger")
    append(other, 2)
    other_note = other.store.latest_checkpoint()
    assert post(server.url, format_add_checkpoint(0, [], other_note)).status_code == 404
    other.close()

    impostor = make_log(tmp_path / "impostor")  # same origin, different key
    append(impostor, 7)
    forged = impostor.store.latest_checkpoint()
    assert post(server.url, format_add_checkpoint(3, proof, forged)).status_code == 403
    impostor.close()

    big = b"old 3\n" + b"x" * (70 * 1024)
    assert post(server.url, big).status_code == 400

    with httpx.Client(trust_env=False) as c:
        assert c.get(server.url + "/w/add-checkpoint").status_code == 405
        assert c.post(server.url + "/add-checkpoint", content=b"old 0\n\n").status_code == 404

    good = post(server.url, format_add_checkpoint(3, proof, note))
    assert good.status_code == 200
    assert Witness(witness.dir).latest(ORIGIN).checkpoint.size == 7


def test_concurrent_requests_never_roll_the_witness_back(
    log: Log, witness: Witness, server: ServerThread
) -> None:
    """tlog-witness: checking the old size and recording the new checkpoint are one step.

    Many requests from the same old size race; exactly one wins, the others get 409 naming the
    winner's size, and the recorded checkpoint is the winner's.
    """
    append(log, 4)
    post(server.url, format_add_checkpoint(0, [], log.store.latest_checkpoint()))
    notes = []
    for _ in range(8):
        append(log, 3)
        cp = latest_cp(log)
        proof = log.store.consistency_proof(4, cp.size)
        notes.append((cp.size, log.store.latest_checkpoint(), proof))
    barrier = threading.Barrier(len(notes))
    answers: dict[int, httpx.Response] = {}

    def offer(size: int, note: bytes, proof: list[bytes]) -> None:
        barrier.wait()
        answers[size] = post(server.url, format_add_checkpoint(4, proof, note))

    threads = [threading.Thread(target=offer, args=n) for n in notes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [s for s, r in answers.items() if r.status_code == 200]
    assert len(winners) == 1
    for size, r in answers.items():
        if size != winners[0]:
            assert r.status_code == 409 and r.text == f"{winners[0]}\n"
    assert Witness(witness.dir).latest(ORIGIN).checkpoint.size == winners[0]


# --- the log side: pushing, retrying from the witness's size, storing cosignatures --------------


def test_pusher_gets_cosignatures_the_log_then_serves(
    log: Log, witness: Witness, server: ServerThread
) -> None:
    register_witness(log, witness.vkey(), server.url + "/w")
    assert [w.name for w in registered_witnesses(log)] == [WITNESS_NAME]
    append(log, 5)
    pusher = WitnessPusher(log)
    try:
        [r] = pusher.push_once()
        assert (r.witness, r.size, r.outcome) == (WITNESS_NAME, 5, "cosigned")
        [r] = pusher.push_once()
        assert r.outcome == "up-to-date"
        append(log, 6)
        [r] = pusher.push_once()
        assert (r.size, r.outcome) == (11, "cosigned")
    finally:
        pusher.stop()
    served = log.checkpoint_with_cosignatures()
    cp, note = open_checkpoint(served, log.verifier(), [parse_vkey(witness.vkey())])
    assert cp.size == 11 and {s.name for s in note.sigs} == {ORIGIN, WITNESS_NAME}
    # the checkpoint of size 5 keeps its own cosignature
    at5 = log.checkpoint_with_cosignatures(5)
    _, note5 = open_checkpoint(at5, log.verifier(), [parse_vkey(witness.vkey())])
    assert WITNESS_NAME in {s.name for s in note5.sigs}
    assert read_refusals(log) == []


def test_a_409_is_retried_from_the_witness_size(
    log: Log, witness: Witness, server: ServerThread
) -> None:
    w = register_witness(log, witness.vkey(), server.url + "/w")
    append(log, 9)
    witness.add_checkpoint(format_add_checkpoint(0, [], log.store.latest_checkpoint()))
    append(log, 4)
    # the log does not know the witness has size 9: it starts from 0, hears 409 "9", retries
    with httpx.Client(trust_env=False) as http:
        size, lines = push_checkpoint(log, w, log.store.latest_checkpoint(), http, old=0)
    assert size == 13 and len(lines) == 1
    assert log.store.cosignature_lines(13) == lines


def test_background_pusher_follows_new_checkpoints(
    log: Log, witness: Witness, server: ServerThread
) -> None:
    register_witness(log, witness.vkey(), server.url + "/w")
    pusher = WitnessPusher(log, interval=0.05)
    pusher.start()
    try:
        for batch in (3, 1, 4, 1, 5):
            append(log, batch)
            pusher.poke()
        size = latest_cp(log).size
        deadline = time.monotonic() + 60
        while not log.store.cosignature_lines(size):
            assert time.monotonic() < deadline, "the pusher did not cosign the latest checkpoint"
            time.sleep(0.05)
    finally:
        pusher.stop()
    assert Witness(witness.dir).latest(ORIGIN).checkpoint.size == size


def test_witness_refuses_a_fork_and_the_log_records_it(
    tmp_path: Path, log: Log, witness: Witness, server: ServerThread
) -> None:
    """Two databases with the same signing key sign different trees: the witness refuses the second.

    The ledger's own guard stops one database from signing a fork; a copy of the key with another
    database (a restored backup, a second deployment) is what a witness is there to catch.
    """
    register_witness(log, witness.vkey(), server.url + "/w")
    append(log, 6, tag="honest")
    pusher = WitnessPusher(log)
    assert [r.outcome for r in pusher.push_once()] == ["cosigned"]
    pusher.stop()
    honest = latest_cp(log)

    fork = make_log(tmp_path / "fork", key_from=log)
    register_witness(fork, witness.vkey(), server.url + "/w")
    append(fork, 6, tag="forged")  # same size, different entries, signed by the same key
    assert latest_cp(fork).size == 6 and latest_cp(fork).root != honest.root
    pusher = WitnessPusher(fork)
    try:
        [r] = pusher.push_once()
        assert r.outcome == "refused" and "forked" in r.message
        [refusal] = read_refusals(fork)
        assert refusal.status == 409 and refusal.witness == WITNESS_NAME
        assert refusal.witness_size == 6 and refusal.log_size == 6 and "forked" in refusal.message
        assert fork.store.cosignature_lines(6) == []

        append(fork, 4, tag="forged")  # a larger forged tree: its proof from 6 cannot verify
        [r] = pusher.push_once(force=True)
        assert r.outcome == "refused"
        assert [x.status for x in read_refusals(fork)] == [409, 422]
        assert "does not extend" in read_refusals(fork)[1].message
    finally:
        pusher.stop()
        fork.close()
    # the witness still holds the honest tree and kept the forged note as evidence
    state = Witness(witness.dir).latest(ORIGIN)
    assert (state.checkpoint.size, state.checkpoint.root) == (6, honest.root)
    [evidence] = Witness(witness.dir).evidence()
    cp, _ = open_checkpoint(evidence.read_bytes(), log.verifier())
    assert cp.size == 6 and cp.root != honest.root


def test_log_behind_the_witness_is_refused_without_asking(
    tmp_path: Path, log: Log, witness: Witness
) -> None:
    append(log, 8)
    cosign_from_log(witness, log)
    w = register_witness(log, witness.vkey(), "http://127.0.0.1:9/unused")
    older = log.store.checkpoint_at(8)
    # a log whose latest checkpoint is smaller than one the witness cosigned (a rollback)
    with httpx.Client(trust_env=False) as http, pytest.raises(WitnessRefused, match="rolled back"):
        push_checkpoint(log, w, older, http, old=10)


def test_unreachable_witness_is_reported_not_fatal(log: Log, witness: Witness) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens here
    register_witness(log, witness.vkey(), f"http://127.0.0.1:{port}")
    append(log, 2)
    pusher = WitnessPusher(log, timeout=5)
    try:
        [r] = pusher.push_once()
    finally:
        pusher.stop()
    assert r.outcome == "unreachable" and read_refusals(log) == []


def test_register_witness_checks_its_input(log: Log, witness: Witness) -> None:
    with pytest.raises(LedgerError, match="cosignature key"):
        register_witness(log, log.verifier().vkey(), "http://127.0.0.1:1")
    with pytest.raises(LedgerError, match="http"):
        register_witness(log, witness.vkey(), "ftp://example")
    with pytest.raises(FormatError):
        register_witness(log, "not a key", None)
    assert registered_witnesses(log) == []


# --- pull mode -------------------------------------------------------------------------------


def test_pull_mode_from_a_data_directory(log: Log, witness: Witness) -> None:
    append(log, 10)
    cp, line = cosign_from_log(witness, log)
    assert cp.size == 10 and log.store.cosignature_lines(10) == [line]
    append(log, 3)
    cp, _ = cosign_from_log(witness, log)
    assert cp.size == 13
    served = log.checkpoint_with_cosignatures()
    _, note = open_checkpoint(served, log.verifier(), [parse_vkey(witness.vkey())])
    assert WITNESS_NAME in {s.name for s in note.sigs}
    assert [w.url for w in registered_witnesses(log)] == [None]


# --- the CLI -----------------------------------------------------------------------------------


def run_cli(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(ledger_cli, list(args), input=input, catch_exceptions=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_witness_server(wdir: Path, log_path: Path) -> tuple[subprocess.Popen, str]:
    """`shuyu ledger witness serve` in a subprocess on a free port; returns it and its URL.

    A port taken by someone else between choosing and binding makes the server exit: try again.
    """
    for _ in range(5):
        port = free_port()
        with open(log_path, "wb") as out:
            proc = subprocess.Popen(
                [str(Path(sys.executable).parent / "shuyu"), "ledger", "witness", "serve",
                 "--witness-dir", str(wdir), "--port", str(port)],
                stdout=out, stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                probe = httpx.post(url + "/add-checkpoint", content=b"x", trust_env=False)
            except httpx.TransportError:
                time.sleep(0.1)
                continue
            if proc.poll() is None and probe.status_code == 400 and "empty line" in probe.text:
                return proc, url
            break  # another program answered on this port
        proc.terminate()
        proc.wait(30)
    raise AssertionError("the witness server did not start:\n" + log_path.read_text())


def test_cli_end_to_end_with_a_served_witness(tmp_path: Path) -> None:
    data, wdir = tmp_path / "data", tmp_path / "wit"
    r = run_cli("init", "--data-dir", str(data))
    assert r.exit_code == 0, r.output
    log_vkey = r.stdout.strip()
    r = run_cli("witness", "init", "--witness-dir", str(wdir), "--name", WITNESS_NAME,
                "--log-vkey", str(data / "ledger" / "ledger.vkey"))
    assert r.exit_code == 0, r.output
    witness_vkey = r.stdout.strip()
    assert parse_vkey(witness_vkey).alg == ALG_COSIGNATURE_V1
    r = run_cli("witness", "status", "--witness-dir", str(wdir))
    assert r.exit_code == 0 and "never cosigned" in r.stdout

    proc, url = start_witness_server(wdir, tmp_path / "witness-server.log")
    try:
        r = run_cli("witness", "add-to-log", "--data-dir", str(data), "--vkey", witness_vkey,
                    "--url", url)
        assert r.exit_code == 0 and WITNESS_NAME in r.stdout
        r = run_cli("append", "--data-dir", str(data),
                    input='{"type": "a.b"}\n{"type": "c.d"}\n{"type": "e"}\n')
        assert r.exit_code == 0, r.output
        r = run_cli("witness", "push", "--data-dir", str(data))
        assert r.exit_code == 0, r.output
        assert r.stdout == f"{WITNESS_NAME}\t3\tcosigned\n"
        r = run_cli("checkpoint", "--data-dir", str(data))
        keys = parse_vkey(log_vkey), [parse_vkey(witness_vkey)]
        cp, note = open_checkpoint(r.stdout.encode(), *keys)
        assert cp.size == 3 and len(note.sigs) == 2
    finally:
        proc.terminate()
        proc.wait(30)
    r = run_cli("witness", "status", "--witness-dir", str(wdir))
    assert r.exit_code == 0
    origin, size, root, when = r.stdout.strip().split("\t")
    assert (origin, size, root) == ("shuyu.local/ledger", "3", b64(cp.root))
    assert when.endswith("Z")


def test_cli_pull_mode_and_errors(tmp_path: Path) -> None:
    data, wdir = tmp_path / "data", tmp_path / "wit"
    log_vkey = run_cli("init", "--data-dir", str(data)).stdout.strip()
    run_cli("witness", "init", "--witness-dir", str(wdir), "--name", WITNESS_NAME,
            "--log-vkey", log_vkey)
    r = run_cli("witness", "cosign", "--witness-dir", str(wdir), "--data-dir", str(data))
    assert r.exit_code == 1 and "no checkpoint" in r.stderr
    run_cli("append", "--data-dir", str(data), input='{"type": "x"}\n')
    r = run_cli("witness", "cosign", "--witness-dir", str(wdir), "--data-dir", str(data))
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("— " + WITNESS_NAME + " ")
    r = run_cli("witness", "status", "--witness-dir", str(wdir))
    assert r.stdout.startswith("shuyu.local/ledger\t1\t")
    r = run_cli("witness", "cosign", "--witness-dir", str(wdir))
    assert r.exit_code != 0 and "exactly one" in r.stderr
    r = run_cli("witness", "status", "--witness-dir", str(tmp_path / "nowhere"))
    assert r.exit_code == 1 and "not a witness directory" in r.stderr
    r = run_cli("witness", "push", "--data-dir", str(data))
    assert r.exit_code == 0 and "no witness" in r.stderr


# --- pull mode over tlog-tiles: the tile hash reader -------------------------------------------


def tile_fetcher(
    store: MemoryStore, size: int, serve_partial: bool = True
) -> tuple[Callable[[str], bytes | None], list[str]]:
    """Serve the tlog-tiles hash tiles of `store` at `size` (as a static mirror would)."""
    from ledger.tiles import parse_tile_path, tile_exists

    requests: list[str] = []

    def fetch(path: str) -> bytes | None:
        requests.append(path)
        tile = parse_tile_path(path)
        if not tile_exists(tile, size) or (tile.width < 256 and not serve_partial):
            return None
        return b"".join(store.read_hashes(tile.coords()))

    return fetch, requests


def test_tile_hash_reader_gives_the_same_proofs_as_the_store() -> None:
    from ledger.witness_pull import TileHashReader

    store = tree(70_000)
    rng = random.Random(7)
    for new in (1, 2, 255, 256, 257, 4096, 65_535, 65_536, 65_537, 70_000):
        fetch, requests = tile_fetcher(store, new)
        reader = TileHashReader(fetch, new)
        olds = {1, max(1, new // 2), max(1, new - 1), new}
        olds |= {rng.randrange(1, new + 1) for _ in range(5)}
        for old in sorted(olds):
            assert prove_consistency(old, new, reader) == prove_consistency(old, new, store)
        assert all("entries" not in p for p in requests)
    # a mirror that dropped its partial tiles: full tiles are used instead (their prefix)
    fetch, requests = tile_fetcher(store, 70_000, serve_partial=False)
    reader = TileHashReader(fetch, 65_600)
    assert prove_consistency(300, 65_600, reader) == prove_consistency(300, 65_600, store)
    assert "tile/0/256.p/64" in requests and "tile/0/256" in requests


def test_tile_hash_reader_refuses_what_the_tree_does_not_hold() -> None:
    from ledger.exceptions import ProofError
    from ledger.witness_pull import TileHashReader

    store = tree(300)
    fetch, _ = tile_fetcher(store, 300)
    with pytest.raises(ProofError, match="not complete"):
        TileHashReader(fetch, 300).read_hashes([(3, 37)])  # leaves 296..303
    fetch, _ = tile_fetcher(store, 100)  # a log that serves less than it claims
    with pytest.raises(ProofError, match="does not serve"):
        TileHashReader(fetch, 300).read_hashes([(8, 0)])


# --- handing a cosigned checkpoint back to the log ---------------------------------------------


def test_accept_cosigned_checkpoint(tmp_path: Path, log: Log, witness: Witness) -> None:
    from ledger.witness_client import CosignatureRejected, accept_cosigned_checkpoint

    append(log, 4)
    note = log.store.latest_checkpoint()
    line = witness.add_checkpoint(format_add_checkpoint(0, [], note))
    cosigned = note + line.encode()
    with pytest.raises(CosignatureRejected, match="registered witness"):
        accept_cosigned_checkpoint(log, cosigned)  # not registered yet
    register_witness(log, witness.vkey(), None)
    assert accept_cosigned_checkpoint(log, cosigned) == [line]
    assert log.store.cosignature_lines(4) == [line]

    stranger, _ = Witness.init(tmp_path / "stranger", "stranger.example/w", [log.verifier().vkey()])
    other_line = stranger.add_checkpoint(format_add_checkpoint(0, [], note))
    assert accept_cosigned_checkpoint(log, cosigned + other_line.encode()) == [line]  # ignored

    text, sigs = split_note(cosigned)
    _, rest = line.rsplit(" ", 1)
    raw = bytearray(base64.b64decode(rest))
    raw[-1] ^= 1
    bad_line = line.rsplit(" ", 1)[0] + " " + b64(bytes(raw)) + "\n"
    with pytest.raises(CosignatureRejected, match="does not verify"):
        accept_cosigned_checkpoint(log, note + bad_line.encode())

    other = make_log(tmp_path / "other")  # a checkpoint this log never signed
    append(other, 4)
    with pytest.raises(CosignatureRejected, match="signed no checkpoint"):
        accept_cosigned_checkpoint(log, other.store.latest_checkpoint() + line.encode())
    other.close()
    with pytest.raises(CosignatureRejected, match="not a cosigned checkpoint"):
        accept_cosigned_checkpoint(log, b"garbage")
    assert log.store.cosignature_lines(4) == [line]


def test_cosignature_time_never_goes_back(log: Log, witness: Witness) -> None:
    """A witness whose clock jumps back still dates each cosignature no earlier than the last."""
    append(log, 2)
    witness.add_checkpoint(format_add_checkpoint(0, [], log.store.latest_checkpoint()))
    state = witness.latest(ORIGIN)
    future = state.cosigned_at + 3600  # pretend the previous cosignature came from a fast clock
    forged_earlier = replace(witness.signer, clock=lambda: future)
    from ledger.note import signature_for

    text = split_note(state.note)[0]
    log_line = split_note(state.note)[1][0].line
    line = signature_for(text, forged_earlier).line
    (witness.state_path(ORIGIN)).write_bytes((text + "\n" + log_line + line).encode())
    append(log, 1)
    proof = log.store.consistency_proof(2, 3)
    new_line = witness.add_checkpoint(format_add_checkpoint(2, proof, log.store.latest_checkpoint()))
    assert cosignature_time(parse_signature_line(new_line.rstrip("\n"))) == future
    assert witness.latest(ORIGIN).cosigned_at == future


# --- with the ledger service: pull mode over its tiles, and its background pusher ---------------


def test_pull_mode_from_the_ledger_service(tmp_path: Path, log: Log, witness: Witness) -> None:
    from ledger.service.main import create_app as ledger_app
    from ledger.witness_pull import CosignatureNotDelivered, cosign_from_url

    for n in (200, 100, 7):  # a full level-0 tile and a partial one
        append(log, n)
    with ServerThread(ledger_app(log.config, sequencer=False), lifespan="on") as service:
        with pytest.raises(CosignatureNotDelivered, match="registered") as e:
            cosign_from_url(witness, service.url)  # the log does not know this witness yet
        assert e.value.line.startswith("— " + WITNESS_NAME)
        assert witness.latest(ORIGIN).checkpoint.size == 307  # cosigned all the same
        register_witness(log, witness.vkey(), None)

        append(log, 60)  # grows past the partial tile: the proof from 307 needs tiles again
        cp, line = cosign_from_url(witness, service.url)
        assert cp.size == 367 and log.store.cosignature_lines(367) == [line]
        served = httpx.get(service.url + "/checkpoint", trust_env=False).content
        _, note = open_checkpoint(served, log.verifier(), [parse_vkey(witness.vkey())])
        assert {s.name for s in note.sigs} == {ORIGIN, WITNESS_NAME}

        append(log, 1)
        r = run_cli("witness", "cosign", "--witness-dir", str(witness.dir), "--url", service.url)
        assert r.exit_code == 0, r.output
        assert log.store.cosignature_lines(368) == [r.stdout]


def test_the_ledger_service_pushes_new_checkpoints_to_witnesses(
    tmp_path: Path, log: Log, witness: Witness, server: ServerThread
) -> None:
    """The service owns the sequencer and the pusher: entries appended by another process's
    appender end up in checkpoints that carry the witness's cosignature."""
    from ledger.service.main import create_app as ledger_app

    register_witness(log, witness.vkey(), server.url + "/w")
    with ServerThread(ledger_app(log.config, sequencer=True), lifespan="on") as service:
        appender = Log.open(log.config)  # connects to the service's sequencer socket
        try:
            for n in (5, 8, 13):
                append(appender, n)
        finally:
            appender.close()
        size = latest_cp(log).size
        assert size == 26
        deadline = time.monotonic() + 60
        while True:
            served = httpx.get(service.url + "/checkpoint", trust_env=False).content
            _, note = open_checkpoint(served, log.verifier(), [parse_vkey(witness.vkey())])
            if parse_checkpoint(note.text).size == size and len(note.sigs) == 2:
                break
            assert time.monotonic() < deadline, "the service did not get the latest cosigned"
            time.sleep(0.1)
    assert Witness(witness.dir).latest(ORIGIN).checkpoint.size == 26
