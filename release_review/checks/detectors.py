"""Detectors of Chinese personal and entity identifiers, vectorized over whole Arrow columns.

Written independently of the synthetic-data generator (which must not be imported here), from
the standards:

- 公民身份号码, GB 11643-1999: 6-digit address code (first two digits a province code), birth
  date YYYYMMDD, 3-digit sequence, check character by ISO 7064 MOD 11-2 (weights 2^(17-i) mod
  11, the weighted sum mod 11 indexes ``10X98765432``). The 15-digit form of 1984-1999 (YYMMDD,
  no check character) is recognised by its structure only.
- 统一社会信用代码, GB 32100-2015: 18 characters of ``0-9A-HJ-NPQRTUWXY``; a registration
  authority, an entity type, a 6-digit address code, the 9-character organisation code
  (GB 11714: weights 3 7 9 10 5 8 4 2, check 11 − sum mod 11, ``X`` for 10, ``0`` for 11)
  and a check character (weights 3^i mod 31, check (31 − sum mod 31) mod 31).
- Mobile numbers: 11 digits with a mainland prefix (13x, 145–149, 15x but 154, 162/165–167,
  170–178, 18x, 19x), optionally +86 / 0086 and separators. Landlines: area code 010, 02x or
  0xxx with a separator or brackets, then 7–8 digits.
- Bank cards: 16–19 digits (15 for American Express) with a known issuer prefix (UnionPay 62,
  Visa 4, Mastercard 51–55 / 2221–2720, JCB 35, Discover 60/65, domestic 9) and the Luhn check.
- Vehicle plates: province character, letter (no I/O), 5 characters (6 for new-energy plates).
- Passports and permits: E + 8 digits, E + letter + 7 digits, G + 8 digits; Hong Kong/Macau
  permits C + 8 characters, home-return permits H/M + 8 or 10 digits.
- Gateway pseudonyms: ``ps_`` + 32 lowercase hex digits (``hub/gateway/pseudonyms.py``), plus
  any patterns the review service passes.

Terms: a *hit* is one identifier-like token in one cell, with a *status*: ``VALID`` (the check
characters hold, or the format has none and the structure holds) or ``NEAR`` (a near miss: the
structure holds but a check character does not, e.g. a mistyped or made-up ID). Random digit
strings almost never reach VALID for the kinds with check characters.

How it is fast: a cell made of one ASCII word (digits, letters, ``_``) is classified by its
length and bytes with numpy (no regular expression per cell). Other cells that a vectorized RE2
prefilter marks as candidates are split into words with Arrow's string kernels and classified
the same way; only the few that hold separated or full-width digits, plates or landlines go
through Python regular expressions.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from enum import IntEnum

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


class Kind(IntEnum):
    RESIDENT_ID = 0
    CREDIT_CODE = 1
    BANK_CARD = 2
    PSEUDONYM = 3
    MOBILE = 4
    PLATE = 5
    RESIDENT_ID_15 = 6
    PASSPORT = 7
    LANDLINE = 8


KIND_NAMES = {
    Kind.RESIDENT_ID: "resident_id", Kind.CREDIT_CODE: "credit_code", Kind.BANK_CARD: "bank_card",
    Kind.PSEUDONYM: "pseudonym", Kind.MOBILE: "mobile", Kind.PLATE: "plate",
    Kind.RESIDENT_ID_15: "resident_id_15", Kind.PASSPORT: "passport", Kind.LANDLINE: "landline",
}
KIND_LABELS = {
    Kind.RESIDENT_ID: "公民身份号码", Kind.CREDIT_CODE: "统一社会信用代码", Kind.BANK_CARD: "银行卡号",
    Kind.PSEUDONYM: "网关假名", Kind.MOBILE: "手机号码", Kind.PLATE: "机动车号牌",
    Kind.RESIDENT_ID_15: "15位身份证号", Kind.PASSPORT: "护照/通行证号", Kind.LANDLINE: "固定电话",
}
VALID, NEAR = 2, 1

PROVINCES = frozenset({11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43,
                       44, 45, 46, 50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 91})
CREDIT_ALPHABET = b"0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_AUTHORITIES = b"123456789ANY"
MOBILE_PREFIXES = [p for p in range(130, 200) if p // 10 in (13, 18, 19)
                   or p in (145, 146, 147, 148, 149, 150, 151, 152, 153, 155, 156, 157, 158, 159,
                            162, 165, 166, 167, 170, 171, 172, 173, 174, 175, 176, 177, 178)]
CURRENT_YEAR = date.today().year

_PROVINCE_OK = np.zeros(100, bool)
_PROVINCE_OK[list(PROVINCES)] = True
_MOBILE_OK = np.zeros(1000, bool)
_MOBILE_OK[MOBILE_PREFIXES] = True
_RID_WEIGHTS = np.array([pow(2, 17 - i, 11) for i in range(17)], np.int64)
_RID_CHECK = np.frombuffer(b"10X98765432", np.uint8)
_CREDIT_VALUE = np.full(256, -1, np.int16)
_CREDIT_VALUE[np.frombuffer(CREDIT_ALPHABET, np.uint8)] = np.arange(31)
_CREDIT_WEIGHTS = np.array([pow(3, i, 31) for i in range(17)], np.int64)
_ORG_VALUE = np.full(256, -1, np.int16)
_ORG_VALUE[np.frombuffer(b"0123456789", np.uint8)] = np.arange(10)
_ORG_VALUE[np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", np.uint8)] = np.arange(10, 36)
_ORG_WEIGHTS = np.array([3, 7, 9, 10, 5, 8, 4, 2], np.int64)
_AUTHORITY_OK = np.zeros(256, bool)
_AUTHORITY_OK[np.frombuffer(CREDIT_AUTHORITIES, np.uint8)] = True
_WORD_BYTE = np.zeros(256, bool)
_WORD_BYTE[np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_",
                         np.uint8)] = True
_HEX_LOWER = np.zeros(256, bool)
_HEX_LOWER[np.frombuffer(b"0123456789abcdef", np.uint8)] = True
_UPPER_NO_IO = np.zeros(256, bool)
_UPPER_NO_IO[np.frombuffer(b"ABCDEFGHJKLMNPQRSTUVWXYZ", np.uint8)] = True
_DAYS = np.array([0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])

PLATE_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
# RE2 (vectorized, over cells that are not one ASCII word): could the cell hold an identifier?
PREFILTER = (r"\d{6}|[０-９]{6}|ps_[0-9a-f]{8}|[" + PLATE_PROVINCES + r"][A-HJ-NP-Z]"
             r"|[A-Z][0-9A-Z]?\d{7}|\d{3}[- ]\d{4}[- ]\d{4}|\d{4}[- ]\d{4}[- ]\d{4}|0\d{2,3}[-)]")
# RE2: candidates that need Python (separated or full-width digits, plates, landlines)
SLOW_PREFILTER = (r"\d[- ]\d|[０-９]|[" + PLATE_PROVINCES + r"][A-HJ-NP-Z]|0\d{2,3}-|\(0\d")
NON_WORD = r"[^0-9A-Za-z_]+"
EXAMPLE_TOKENS = 64
# Python, over candidate cells: tokens to classify
_B, _E = r"(?<![0-9A-Za-z_])", r"(?![0-9A-Za-z_])"
WORD_RE = re.compile(_B + r"[0-9A-Za-z_]{9,40}" + _E)
MOBILE_SEP_RE = re.compile(r"(?<!\d)(?:\+?86[ -]?|0086[ -]?)?1\d{2}[ -]?\d{4}[ -]?\d{4}(?!\d)")
CARD_SEP_RE = re.compile(r"(?<!\d)\d{4}(?:[ -]\d{4}){3}(?:[ -]?\d{1,3})?(?!\d)")
LANDLINE_RE = re.compile(r"(?<![\d-])(?:\(0(?:10|2\d|[3-9]\d{2})\)\s?|0(?:10|2\d|[3-9]\d{2})-)"
                         r"[2-9]\d{6,7}(?![\d-])")
PLATE_RE = re.compile("[" + PLATE_PROVINCES + r"][A-HJ-NP-Z][·•\-\s]?"
                      r"(?:[DF][A-HJ-NP-Z0-9]\d{4}|\d{5}[DF]|[A-HJ-NP-Z0-9]{4}[A-HJ-NP-Z0-9挂学警港澳])"
                      r"(?![0-9A-Za-z])")
SEPARATORS = re.compile(r"[ \-+]")


@dataclass
class Hits:
    """Identifier-like tokens found in an array of cells (parallel arrays, one entry per hit).

    A hit whose token is the whole cell (the common case: a column of IDs) has no entry in
    ``tokens``; a token found inside longer text has its text there, by hit position."""

    cell: np.ndarray  # int64 index of the cell in the scanned array
    kind: np.ndarray  # int8 Kind
    status: np.ndarray  # int8 VALID or NEAR
    tokens: dict[int, str] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> Hits:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int8), np.zeros(0, np.int8))

    def __len__(self) -> int:
        return len(self.cell)

    @classmethod
    def concat(cls, parts: list[Hits]) -> Hits:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        tokens, base = {}, 0
        for p in parts:
            tokens.update({base + i: t for i, t in p.tokens.items()})
            base += len(p)
        return cls(np.concatenate([p.cell for p in parts]), np.concatenate([p.kind for p in parts]),
                   np.concatenate([p.status for p in parts]), tokens)

    def token(self, i: int, cells: pa.Array) -> str:
        """The text of hit `i` (`cells` is the array that was scanned)."""
        found = self.tokens.get(i)
        return found if found is not None else str(cells[int(self.cell[i])].as_py())


# --- check characters, whole matrices ----------------------------------------------------


def _digits(m: np.ndarray) -> np.ndarray:
    """Digit values (uint8; bytes that are not digits give values above 9)."""
    return m - np.uint8(48)


def _all_digits(m: np.ndarray) -> np.ndarray:
    return (_digits(m) <= 9).all(axis=1)


def _number(d: np.ndarray) -> np.ndarray:
    """The decimal number of each row of a small digit matrix (int32)."""
    out = np.zeros(len(d), np.int32)
    for j in range(d.shape[1]):
        out = out * 10 + d[:, j]
    return out


def _weighted(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Row-wise weighted sums, one column at a time (no widened copy of the matrix)."""
    out = np.zeros(len(values), np.int32)
    for j, w in enumerate(weights.tolist()):
        out += values[:, j].astype(np.int32) * int(w)
    return out


def valid_dates(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """True where (year, month, day) is a real calendar date from 1900 to this year."""
    ok = (year >= 1900) & (year <= CURRENT_YEAR) & (month >= 1) & (month <= 12) & (day >= 1)
    m = np.clip(month, 0, 12)
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    limit = _DAYS[m] - ((m == 2) & ~leap)
    return ok & (day <= limit)


def resident_id_18(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(structure ok, check ok) for an (n, 18) byte matrix (upper-cased)."""
    d = _digits(m[:, :17])
    body_digits = (d <= 9).all(axis=1)
    last = m[:, 17]
    last_ok = ((last >= 48) & (last <= 57)) | (last == ord("X"))
    d = np.minimum(d, 9)
    province = d[:, 0].astype(np.int32) * 10 + d[:, 1]
    structure = body_digits & last_ok & (d[:, 0] > 0) & _PROVINCE_OK[province]
    structure &= valid_dates(_number(d[:, 6:10]), _number(d[:, 10:12]), _number(d[:, 12:14]))
    check = _RID_CHECK[_weighted(d, _RID_WEIGHTS) % 11] == last
    return structure, structure & check


def resident_id_15(m: np.ndarray) -> np.ndarray:
    """Structure of the 15-digit form (no check character) for an (n, 15) byte matrix."""
    d = _digits(m)
    digits = (d <= 9).all(axis=1)
    d = np.minimum(d, 9)
    province = d[:, 0].astype(np.int32) * 10 + d[:, 1]
    return digits & (d[:, 0] > 0) & _PROVINCE_OK[province] & valid_dates(
        1900 + _number(d[:, 6:8]), _number(d[:, 8:10]), _number(d[:, 10:12]))


def credit_code(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(structure ok, organisation-code check ok, overall check ok), (n, 18) upper-cased."""
    values = _CREDIT_VALUE[m]
    alphabet = (values >= 0).all(axis=1)
    a = _digits(m[:, 2:8])
    address = (a <= 9).all(axis=1)
    a = np.minimum(a, 9)
    province = a[:, 0].astype(np.int32) * 10 + a[:, 1]
    second = m[:, 1]
    structure = (alphabet & address & _AUTHORITY_OK[m[:, 0]] & (second >= 49) & (second <= 57)
                 & _PROVINCE_OK[province])
    v = np.maximum(values, 0)
    overall = _CREDIT_BYTES_LOOKUP[(31 - _weighted(v[:, :17], _CREDIT_WEIGHTS) % 31) % 31] \
        == m[:, 17]
    org_values = _ORG_VALUE[m[:, 8:16]]
    org_body = (org_values >= 0).all(axis=1)
    org_check = 11 - _weighted(np.maximum(org_values, 0), _ORG_WEIGHTS) % 11
    expected = np.where(org_check == 10, ord("X"), np.where(org_check == 11, ord("0"),
                                                            org_check + 48))
    org_ok = org_body & (expected == m[:, 16])
    return structure, structure & org_ok, structure & overall


_CREDIT_BYTES_LOOKUP = np.frombuffer(CREDIT_ALPHABET, np.uint8)


def luhn(m: np.ndarray) -> np.ndarray:
    """Luhn check over an (n, L) matrix of ASCII digits (rows must be all digits)."""
    d = _digits(m)[:, ::-1].astype(np.int16)
    doubled = d[:, 1::2] * 2
    doubled = doubled - 9 * (doubled > 9)
    return (d[:, 0::2].sum(axis=1) + doubled.sum(axis=1)) % 10 == 0


def card_issuer(m: np.ndarray) -> np.ndarray:
    """True where the first digits are a known card issuer prefix (see module doc)."""
    d = _digits(m[:, :4]).astype(np.int32)
    two = d[:, 0] * 10 + d[:, 1]
    four = two * 100 + d[:, 2] * 10 + d[:, 3]
    length = m.shape[1]
    if length == 15:
        return (two == 34) | (two == 37)
    return ((two == 62) | (d[:, 0] == 4) | ((two >= 51) & (two <= 55))
            | ((four >= 2221) & (four <= 2720)) | (two == 35) | (two == 60) | (two == 65)
            | (d[:, 0] == 9))


# --- classification of single-word tokens ---------------------------------------------


class _Best:
    """Keeps, per token, the best (lowest Kind, VALID before NEAR) classification offered."""

    def __init__(self, n: int):
        self.rank = np.full(n, 99, np.int16)
        self.kind = np.full(n, -1, np.int8)
        self.status = np.zeros(n, np.int8)

    def offer(self, rows: np.ndarray, mask: np.ndarray, kind: Kind, status: int) -> None:
        rows = rows[mask]
        if not rows.size:
            return
        rank = int(kind) if status == VALID else 50 + int(kind)
        better = rows[self.rank[rows] > rank]
        self.rank[better] = rank
        self.kind[better] = kind
        self.status[better] = status


def _matrix(arr: pa.Array, width: int) -> np.ndarray:
    """An (n, width) byte matrix of a string array whose values all have `width` bytes."""
    offsets, data = _buffers(arr)
    return data[: len(arr) * width].reshape(len(arr), width)


def classify_words(arr: pa.Array, lengths: np.ndarray, best: _Best, rows: np.ndarray) -> None:
    """Classify cells that are single ASCII words (`lengths` are their byte lengths); results
    go into `best` at positions `rows`."""
    for width in np.unique(lengths):
        sel = np.flatnonzero(lengths == width)
        m = _matrix(arr.take(pa.array(sel)), int(width))
        _classify_width(int(width), m, rows[sel], best)


def _upper(m: np.ndarray) -> np.ndarray:
    return np.where((m >= 97) & (m <= 122), m - 32, m).astype(np.uint8)


def _classify_width(width: int, m: np.ndarray, r: np.ndarray, best: _Best) -> None:
    digits = _all_digits(m)
    id_like = np.zeros(len(m), bool)  # a resident ID's structure is no bank card
    if width == 18:
        upper = _upper(m)
        structure, ok = resident_id_18(upper)
        id_like = structure
        best.offer(r, ok, Kind.RESIDENT_ID, VALID)
        best.offer(r, structure & ~ok, Kind.RESIDENT_ID, NEAR)
        rest = np.flatnonzero(~ok)
        if rest.size:
            cstruct, org_ok, overall_ok = credit_code(upper[rest])
            id_like[rest] |= cstruct
            best.offer(r[rest], org_ok & overall_ok, Kind.CREDIT_CODE, VALID)
            best.offer(r[rest], cstruct & (org_ok ^ overall_ok), Kind.CREDIT_CODE, NEAR)
    if width == 15:
        best.offer(r, resident_id_15(m), Kind.RESIDENT_ID_15, VALID)
    if 15 <= width <= 19 and digits.any():
        idx = np.flatnonzero(digits & ~id_like)
        mm = m[idx]
        ok = luhn(mm) & card_issuer(mm)
        best.offer(r[idx], ok, Kind.BANK_CARD, VALID)
    if width in (11, 13, 15) and digits.any():
        start = {11: 0, 13: 2, 15: 4}[width]
        lead = {11: b"", 13: b"86", 15: b"0086"}[width]
        prefix = _number(np.minimum(_digits(m[:, start:start + 3]), 9))
        ok = digits & _MOBILE_OK[prefix]
        for i, c in enumerate(lead):
            ok &= m[:, i] == c
        best.offer(r, ok, Kind.MOBILE, VALID)
    if width == 35:
        ok = (m[:, 0] == ord("p")) & (m[:, 1] == ord("s")) & (m[:, 2] == ord("_"))
        ok &= _HEX_LOWER[m[:, 3:]].all(axis=1)
        best.offer(r, ok, Kind.PSEUDONYM, VALID)
    if width in (9, 11) and not digits.all():
        best.offer(r, _passport(_upper(m), width), Kind.PASSPORT, VALID)


def _passport(m: np.ndarray, width: int) -> np.ndarray:
    first = m[:, 0]
    tail_digits = _all_digits(m[:, 2:])
    second = m[:, 1]
    second_digit = (second >= 48) & (second <= 57)
    if width == 11:
        return ((first == ord("H")) | (first == ord("M"))) & second_digit & tail_digits
    e_form = (first == ord("E")) & tail_digits & (second_digit | _UPPER_NO_IO[second])
    g_form = (first == ord("G")) & tail_digits & second_digit
    c_form = (first == ord("C")) & tail_digits & (second_digit | _UPPER_NO_IO[second])
    hm_form = ((first == ord("H")) | (first == ord("M"))) & tail_digits & second_digit
    return e_form | g_form | c_form | hm_form


# --- scanning arrays ---------------------------------------------------------------------


def _buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, data) of a string array, offsets rebased to start at 0."""
    if arr.null_count:
        arr = arr.fill_null("")
    if arr.type != pa.string():
        arr = arr.cast(pa.string())
    offsets = np.frombuffer(arr.buffers()[1], np.int32)[arr.offset:arr.offset + len(arr) + 1]
    data_buffer = arr.buffers()[2]
    data = (np.frombuffer(data_buffer, np.uint8) if data_buffer is not None
            else np.zeros(0, np.uint8))
    base = int(offsets[0])
    return (offsets - base).astype(np.int64), data[base:int(offsets[-1])]


def _bools(arr: pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), bool)


def scan_strings(arr: pa.Array, extra_patterns: list[re.Pattern] | None = None) -> Hits:
    """Every identifier-like token in a string array (nulls hold nothing)."""
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    if arr.type != pa.string():
        arr = arr.cast(pa.string())
    if len(arr) == 0:
        return Hits.empty()
    lengths = np.asarray(pc.fill_null(pc.binary_length(arr), 0).to_numpy(zero_copy_only=False))
    word = _bools(pc.ascii_is_alnum(arr))
    pseudonym_like = _bools(pc.starts_with(arr, "ps_"))
    if pseudonym_like.any():
        word |= pseudonym_like & _bools(pc.ascii_is_alnum(pc.utf8_slice_codeunits(arr, 3)))
    parts = []
    pure = np.flatnonzero(word & (lengths >= 9) & (lengths <= 40))
    if pure.size:
        parts.append(_pure_hits(arr.take(pa.array(pure)), lengths[pure], pure))
    impure = np.flatnonzero(~word & (lengths >= 7))
    if impure.size:
        sub = arr.take(pa.array(impure))
        cand = impure[_bools(pc.match_substring_regex(sub, PREFILTER))]
        if cand.size:
            texts = arr.take(pa.array(cand))
            slow = _bools(pc.match_substring_regex(texts, SLOW_PREFILTER))
            if slow.any():
                idx = np.flatnonzero(slow)
                parts.append(scan_texts(texts.take(pa.array(idx)).to_pylist(), cand[idx]))
            if not slow.all():
                idx = np.flatnonzero(~slow)
                parts.append(_word_hits(texts.take(pa.array(idx)), cand[idx]))
    hits = Hits.concat(parts)
    if extra_patterns:
        hits = Hits.concat([hits, _pattern_hits(arr, extra_patterns)])
    return hits


def _word_hits(texts: pa.Array, cells: np.ndarray) -> Hits:
    """Tokens of text that needs no Python: split at every non-word byte (vectorized), then
    the word classifier. Keeps the text of the first few hits of each kind for examples."""
    words = pc.split_pattern(pc.replace_substring_regex(texts, NON_WORD, " "), " ")
    counts = np.diff(np.asarray(words.offsets.to_numpy(zero_copy_only=False)))
    flat = words.flatten()
    parent = np.repeat(cells, counts)
    lengths = np.asarray(pc.binary_length(flat).to_numpy(zero_copy_only=False))
    keep = np.flatnonzero((lengths >= 9) & (lengths <= 40))
    if not keep.size:
        return Hits.empty()
    tokens = flat.take(pa.array(keep))
    best = _Best(keep.size)
    classify_words(tokens, lengths[keep], best, np.arange(keep.size))
    found = np.flatnonzero(best.kind >= 0)
    hits = Hits(parent[keep][found], best.kind[found], best.status[found])
    for kind in np.unique(hits.kind):
        for i in np.flatnonzero(hits.kind == kind)[:EXAMPLE_TOKENS]:
            hits.tokens[int(i)] = tokens[int(found[i])].as_py()
    return hits


def _pure_hits(words: pa.Array, lengths: np.ndarray, cells: np.ndarray) -> Hits:
    best = _Best(len(words))
    classify_words(words, lengths, best, np.arange(len(words)))
    found = np.flatnonzero(best.kind >= 0)
    return Hits(cells[found], best.kind[found], best.status[found])


def scan_texts(texts: list[str], cells: np.ndarray) -> Hits:
    """Tokens in free text (Python regular expressions, then the word classifier)."""
    cell_of: list[int] = []
    tokens: list[str] = []
    direct: list[tuple[int, Kind, str]] = []
    for cell, text in zip(cells.tolist(), texts):
        if not text:
            continue
        if not text.isascii():
            text = unicodedata.normalize("NFKC", text)
        seen: set[tuple[int, int]] = set()
        for rx in (WORD_RE, MOBILE_SEP_RE, CARD_SEP_RE):
            for mt in rx.finditer(text):
                if mt.span() not in seen:
                    seen.add(mt.span())
                    cell_of.append(cell)
                    tokens.append(mt.group())
        for mt in LANDLINE_RE.finditer(text):
            direct.append((cell, Kind.LANDLINE, mt.group()))
        if not text.isascii():
            for mt in PLATE_RE.finditer(text):
                direct.append((cell, Kind.PLATE, mt.group()))
    parts = [_classify_tokens(tokens, np.array(cell_of, np.int64))]
    if direct:
        parts.append(Hits(np.array([d[0] for d in direct], np.int64),
                          np.array([d[1] for d in direct], np.int8),
                          np.full(len(direct), VALID, np.int8),
                          {i: d[2] for i, d in enumerate(direct)}))
    return Hits.concat(parts)


def _classify_tokens(tokens: list[str], cells: np.ndarray) -> Hits:
    if not tokens:
        return Hits.empty()
    compact = pa.array([SEPARATORS.sub("", t) for t in tokens], pa.string())
    lengths = np.asarray(pc.binary_length(compact).to_numpy(zero_copy_only=False))
    ascii_word = _bools(pc.ascii_is_alnum(compact)) | np.array(
        [t.startswith("ps_") for t in tokens], bool)
    rows = np.flatnonzero(ascii_word & (lengths >= 9) & (lengths <= 40))
    best = _Best(len(tokens))
    if rows.size:
        classify_words(compact.take(pa.array(rows)), lengths[rows], best, rows)
    found = np.flatnonzero(best.kind >= 0)
    return Hits(cells[found], best.kind[found], best.status[found],
                {j: tokens[i] for j, i in enumerate(found.tolist())})


def _pattern_hits(arr: pa.Array, patterns: list[re.Pattern]) -> Hits:
    """Cells holding one of the review service's own pseudonym patterns (RE2, vectorized)."""
    parts = []
    for rx in patterns:
        mask = pc.fill_null(pc.match_substring_regex(arr, rx.pattern), False)
        idx = np.flatnonzero(np.asarray(mask.to_numpy(zero_copy_only=False), bool))
        if idx.size:
            texts = arr.take(pa.array(idx)).to_pylist()
            tokens = [m.group() if (m := rx.search(t)) else t for t in texts]
            parts.append(Hits(idx.astype(np.int64), np.full(idx.size, Kind.PSEUDONYM, np.int8),
                              np.full(idx.size, VALID, np.int8), dict(enumerate(tokens))))
    return Hits.concat(parts)


def integers_as_text(values: pa.Array) -> tuple[np.ndarray, pa.Array] | None:
    """Integer (or integral float) cells of 9 digits or more, as (cell indices, strings):
    identifiers stored as numbers (a CSV column of mobile numbers is read as int64)."""
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if pa.types.is_floating(arr.type):
        f = np.asarray(arr.to_numpy(zero_copy_only=False), np.float64)
        ok = np.isfinite(f) & (np.abs(f) >= 1e8) & (np.abs(f) < 9.2e18)
        ok &= np.floor(f) == f
        idx = np.flatnonzero(ok)
        ints = f[idx].astype(np.int64)
    elif pa.types.is_integer(arr.type):
        if pa.types.is_unsigned_integer(arr.type):
            v = np.asarray(arr.fill_null(0).to_numpy(zero_copy_only=False)).astype(np.uint64)
            idx = np.flatnonzero((v >= 10**8) & (v < 2**63))
            ints = v[idx].astype(np.int64)
        else:
            v = np.asarray(arr.fill_null(0).to_numpy(zero_copy_only=False)).astype(np.int64)
            idx = np.flatnonzero(v >= 10**8)
            ints = v[idx]
    else:
        return None
    if not idx.size:
        return None
    return idx.astype(np.int64), pa.array(ints, pa.int64()).cast(pa.string())
