"""C2SP signed notes, keys, checkpoints, cosignatures and tlog-proof bundles."""

from __future__ import annotations

import pytest

from ledger.checkpoint import Checkpoint, format_checkpoint, open_checkpoint, parse_checkpoint, sign_checkpoint
from ledger.exceptions import FormatError, SignatureError
from ledger.hashing import EMPTY_ROOT
from ledger.note import (
    ALG_COSIGNATURE_V1,
    Ed25519Signer,
    check_key_name,
    format_note,
    open_note,
    parse_skey,
    parse_vkey,
    sign_note,
)
from ledger.proofbundle import format_tlog_proof, parse_tlog_proof

# From Go's golang.org/x/mod/sumdb/note documentation.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_SIG = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"


def test_go_documentation_vector_byte_for_byte() -> None:
    signer = parse_skey(GO_SKEY)
    assert signer.vkey() == GO_VKEY
    assert signer.skey() == GO_SKEY
    note = sign_note(GO_TEXT, signer)
    assert note.decode() == GO_TEXT + "\n" + GO_SIG
    opened = open_note(note, [parse_vkey(GO_VKEY)])
    assert opened.text == GO_TEXT and len(opened.sigs) == 1


def test_unknown_keys_are_ignored_but_one_known_is_required() -> None:
    log = Ed25519Signer.generate("example.com/log")
    other = Ed25519Signer.generate("other.example")
    note = sign_note("hello\n", log, other)
    opened = open_note(note, [log.verifier()])
    assert [s.name for s in opened.sigs] == ["example.com/log"]
    assert [s.name for s in opened.unverified] == ["other.example"]
    with pytest.raises(SignatureError):
        open_note(note, [Ed25519Signer.generate("example.com/log").verifier()])


def test_tampered_note_fails() -> None:
    log = Ed25519Signer.generate("example.com/log")
    note = sign_note("hello\n", log)
    with pytest.raises(SignatureError) as e:
        open_note(note.replace(b"hello", b"hellO"), [log.verifier()])
    assert e.value.key_name == "example.com/log"


@pytest.mark.parametrize(
    "bad",
    [b"no blank line\n", b"text\n\n", b"text\n\n\xe2\x80\x94 k AAAA\n", b"te\x01xt\n\n\xe2\x80\x94 k AAAAAAAA\n",
     b"text\n\n- k AAAAAAAA\n", b"\xff\n\n\xe2\x80\x94 k AAAAAAAA\n"],
)
def test_malformed_notes(bad: bytes) -> None:
    with pytest.raises(FormatError):
        open_note(bad, [Ed25519Signer.generate("k").verifier()])


@pytest.mark.parametrize(
    "vkey",
    ["", "name+zz+AAAA", "na me+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
     "PeterNeumann+00000000+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
     "PeterNeumann+c74f20a3+AxZc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"],
)
def test_malformed_vkeys(vkey: str) -> None:
    with pytest.raises(FormatError):
        parse_vkey(vkey)


def test_checkpoint_roundtrip_and_strictness() -> None:
    cp = Checkpoint("example.com/log", 42, EMPTY_ROOT, ("ext one",))
    assert parse_checkpoint(format_checkpoint(cp)) == cp
    for text in ["example.com/log\n042\n" + "A" * 43 + "=\n", "example.com/log\n1\n", "\n1\nAAAA\n",
                 "example.com/log\n-1\n" + "A" * 43 + "=\n", "example.com/log\n1\nAAAA\n"]:
        with pytest.raises(FormatError):
            parse_checkpoint(text)


def test_signed_checkpoint_and_cosignature() -> None:
    log = Ed25519Signer.generate("example.com/log")
    witness = Ed25519Signer.generate("witness.example", ALG_COSIGNATURE_V1, clock=lambda: 1700000000)
    cp = Checkpoint("example.com/log", 3, EMPTY_ROOT)
    note = sign_checkpoint(cp, log)
    cosigned = note + sign_note(format_checkpoint(cp), witness).split(b"\n\n")[1]
    got, opened = open_checkpoint(cosigned, log.verifier(), [witness.verifier()])
    assert got == cp and {s.name for s in opened.sigs} == {"example.com/log", "witness.example"}
    wsig = [s for s in opened.sigs if s.name == "witness.example"][0]
    assert int.from_bytes(wsig.raw[:8], "big") == 1700000000
    # a witness key must not verify as a log key, nor the other way round
    assert witness.vkey().split("+")[1] != Ed25519Signer(witness.name, witness.private).vkey().split("+")[1]
    with pytest.raises(SignatureError):
        open_checkpoint(cosigned, Ed25519Signer.generate("example.com/log").verifier())
    with pytest.raises(FormatError):
        sign_checkpoint(cp, Ed25519Signer.generate("other.example"))


def test_tlog_proof_roundtrip() -> None:
    log = Ed25519Signer.generate("example.com/log")
    note = sign_checkpoint(Checkpoint("example.com/log", 2, EMPTY_ROOT), log)
    text = format_tlog_proof(1, [EMPTY_ROOT], note, extra=b"ctx")
    assert text.startswith("c2sp.org/tlog-proof@v1\nextra Y3R4\nindex 1\n")
    p = parse_tlog_proof(text)
    assert (p.index, p.hashes, p.checkpoint, p.extra) == (1, [EMPTY_ROOT], note, b"ctx")
    with pytest.raises(FormatError):
        parse_tlog_proof(text.replace("index 1", "index 01"))


# --- entries: our json fast path must give exactly the RFC 8785 bytes ------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
import rfc8785  # noqa: E402

from ledger.entry import canonical_bytes, decode_entry, encode_entry  # noqa: E402

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.text(max_size=8), _json, max_size=6))
def test_canonical_bytes_equal_rfc8785(obj: dict) -> None:
    try:
        expected = rfc8785.dumps(obj)
    except Exception:  # noqa: BLE001 - values RFC 8785 refuses must be refused by us too
        with pytest.raises(Exception):
            canonical_bytes(obj)
        return
    if len(expected) <= 65535:
        assert canonical_bytes(obj) == expected


def test_canonical_bytes_known_edge_cases() -> None:
    from enum import Enum

    class Grade(str, Enum):
        core = "核心"

    for obj in [{"\ue000": 1, "\U0001f600": 2}, {"a": "\u2028\x1f\"\\"}, {"f": 1.0},
                {"g": Grade.core, "键": [{"b": True, "a": None}], "n": -(2**53 - 1)}]:
        assert canonical_bytes(obj) == rfc8785.dumps(obj)
    data = encode_entry({"type": "query", "actor": "数域", "details": {"rows": 3}})
    assert decode_entry(data)["actor"] == "数域"
    with pytest.raises(Exception):
        canonical_bytes({"n": 2**53})  # outside the safe integer range, as RFC 8785 says


def test_character_classes_match_unicodedata_for_every_code_point() -> None:
    """The note checks scan with regular expressions; each must say exactly what the Unicode
    database of this Python says (category Cc; str.isspace() or category Zs)."""
    import sys
    import unicodedata

    from ledger.note import _CONTROL, _CONTROL_BUT_NEWLINE, _SPACE

    for cp in range(sys.maxunicode + 1):
        ch = chr(cp)
        control = unicodedata.category(ch) == "Cc"
        assert bool(_CONTROL.match(ch)) == control, hex(cp)
        assert bool(_CONTROL_BUT_NEWLINE.match(ch)) == (control and ch != "\n"), hex(cp)
        assert bool(_SPACE.match(ch)) == (ch.isspace() or unicodedata.category(ch) == "Zs"), \
            hex(cp)


@pytest.mark.parametrize("name, problem", [
    ("a b", "space"), ("a\u3000b", "space"), ("a\u2028b", "space"), ("a+b", "plus"),
    ("a\x85b", "space"), ("a\x7fb", "control"), ("a\x00b", "control"), ("", "empty"),
])
def test_bad_key_names_are_refused(name: str, problem: str) -> None:
    with pytest.raises(FormatError) as err:
        check_key_name(name)
    assert problem in str(err.value)


@pytest.mark.parametrize("text", ["a\x00b\n", "a\rb\n", "tab\there\n", "del\x7f\n", "c1\x9f\n"])
def test_note_text_with_a_control_character_is_refused(text: str) -> None:
    with pytest.raises(FormatError, match="control character"):
        format_note(text, [])


_plain_floats = st.floats(min_value=1e-5, max_value=1e15, exclude_max=True).filter(
    lambda x: not x.is_integer())


@settings(max_examples=2000, deadline=None)
@given(st.one_of(_plain_floats, _plain_floats.map(lambda x: -x),
                 st.integers(-10**9, 10**9).map(lambda n: n / 1000),
                 st.floats(allow_nan=False, allow_infinity=False)))
def test_floats_take_the_fast_path_only_where_it_writes_rfc8785(x: float) -> None:
    """Durations like 8.838 go through orjson; the bytes must be RFC 8785's all the same."""
    from ledger.entry import _plain

    obj = {"duration_ms": x, "nested": [x, {"v": x}]}
    assert canonical_bytes(obj) == rfc8785.dumps(obj)
    if 1e-5 <= abs(x) < 1e15 and not x.is_integer():
        assert _plain(obj)


def test_float_formats_that_differ_take_the_full_path() -> None:
    from ledger.entry import _plain

    for x in [0.0, -0.0, 5.0, 1e-6, 1.5e-6, 1e15 + 0.5, 1e16, 1.5e16, 1e21, 2.0**60]:
        assert not _plain({"x": x})
        assert canonical_bytes({"x": x}) == rfc8785.dumps({"x": x})
    assert _plain({"x": 8.838}) and canonical_bytes({"x": 8.838}) == b'{"x":8.838}'
