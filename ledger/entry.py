"""Ledger entries: canonical JSON (RFC 8785) objects describing one event each.

The canonical bytes are the Merkle leaf: they are stored verbatim and re-hashed on every read.
An entry is self-contained (DESIGN.md, "Ledger entry"): ``v``, ``type``, ``at`` (UTC, RFC 3339,
milliseconds), ``actor``, ``role``, the ids of its subjects and a ``details`` object. Only ``v``,
``type`` and ``at`` are required here; the services that write entries fill in the rest.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

import orjson
import rfc8785

from ledger.exceptions import EntryError

ENTRY_VERSION = 1
MAX_ENTRY_BYTES = 65535  # tlog-tiles entry bundles prefix each entry with a uint16 length
# (used with fullmatch: `$` would let a trailing newline through, `\d` any script's digits)
TYPE_PATTERN = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*")
AT_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")
SUBJECT_KEYS = ("authorization", "dataset", "release", "session", "operator")


def utc_now_ms() -> str:
    """The current UTC time as RFC 3339 with milliseconds, e.g. 2026-11-23T08:15:02.120Z."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")[:-6] + "Z"


def prepare_entry(obj: Any, at: str | None = None) -> dict[str, Any]:
    """Validate an event object and add ``v`` and ``at`` when absent (returns a new dict)."""
    if not isinstance(obj, dict):
        raise EntryError(f"an entry must be a JSON object, not {type(obj).__name__}")
    entry = dict(obj)
    kind = entry.get("type")
    if not isinstance(kind, str) or not TYPE_PATTERN.fullmatch(kind):
        raise EntryError(
            f"entry needs a 'type' of dotted lowercase nouns (like 'session.open'), got {kind!r}"
        )
    entry.setdefault("v", ENTRY_VERSION)
    if entry["v"] != ENTRY_VERSION:
        raise EntryError(f"entry version {entry['v']!r} is not supported (only {ENTRY_VERSION})")
    if "at" not in entry:
        entry["at"] = at or utc_now_ms()
        if at is None:
            return _check_details(entry)
    if not isinstance(entry["at"], str) or not AT_PATTERN.fullmatch(entry["at"]):
        raise EntryError(f"entry 'at' must be UTC RFC 3339 with milliseconds, got {entry['at']!r}")
    try:
        datetime.fromisoformat(entry["at"][:-1])
    except ValueError:
        raise EntryError(f"entry 'at' is not a real time: {entry['at']!r}") from None
    return _check_details(entry)


def _check_details(entry: dict[str, Any]) -> dict[str, Any]:
    if "details" in entry and not isinstance(entry["details"], dict):
        raise EntryError("entry 'details' must be an object")
    return entry


_MAX_SAFE_INT = 2**53 - 1


def _plain(value: Any) -> bool:
    """True when `orjson.dumps(OPT_SORT_KEYS)` writes exactly the RFC 8785 bytes of `value`.

    That holds for objects made of strings, safe integers, booleans, null, lists and objects
    whose keys sort the same by code point as by UTF-16 code unit (no key character at or above
    U+D800), and for floats that are not whole numbers with 1e-5 <= |x| < 1e15: both write those
    as the shortest decimal that reads back as x, in plain notation (a duration in milliseconds,
    say). Other floats (orjson writes ``5.0``, ``1e-06``, ``1e+16`` where RFC 8785 writes ``5``,
    ``0.000001``, ``10000000000000000``), big integers and such keys take the full RFC 8785
    path. (Exact types are checked first: this runs on every event the services append.)
    """
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT
    if kind is float:
        return 1e-5 <= abs(value) < 1e15 and not value.is_integer()
    if kind is dict:
        for k, v in value.items():
            if type(k) is not str or not (k.isascii() or max(k) < "\ud800"):
                return False
            if type(v) is not str and not _plain(v):
                return False
        return True
    if kind is list:
        return all(_plain(v) for v in value)
    if isinstance(value, bool | str):  # subclasses (enums)
        return True
    if isinstance(value, int):
        return -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT
    if isinstance(value, dict):
        return _plain(dict(value))
    if isinstance(value, list):
        return _plain(list(value))
    return False


def _dumps(entry: dict[str, Any]) -> bytes:
    if _plain(entry):
        try:
            return orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass  # a lone surrogate: let the full path explain it
    return rfc8785.dumps(entry)


def canonical_bytes(entry: dict[str, Any]) -> bytes:
    """RFC 8785 canonical JSON of an entry, refusing entries too large for a tile bundle."""
    try:
        data = _dumps(entry)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as e:
        raise EntryError(f"entry cannot be canonicalized: {e}") from None
    if len(data) > MAX_ENTRY_BYTES:
        raise EntryError(f"entry is {len(data)} bytes, the limit is {MAX_ENTRY_BYTES}")
    return data


def encode_entry(obj: Any, at: str | None = None) -> bytes:
    """Validate, complete and canonicalize an event; the result is the leaf to append."""
    return canonical_bytes(prepare_entry(obj, at))


def decode_entry(data: bytes) -> dict[str, Any]:
    """Parse stored leaf bytes, checking that they are exactly the canonical form."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise EntryError(f"entry is not JSON: {e}") from None
    if not isinstance(obj, dict) or _dumps(obj) != data:
        raise EntryError("entry bytes are not canonical JSON (RFC 8785)")
    return obj
