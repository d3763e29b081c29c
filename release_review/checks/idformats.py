"""Formats and check characters of Chinese personal and entity identifiers, on whole columns.

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
  170–178, 18x, 19x), optionally preceded by 86 or 0086 (separators removed).
- Bank cards: 16–19 digits (15 for American Express) with a known issuer prefix (UnionPay 62,
  Visa 4, Mastercard 51–55 / 2221–2720, JCB 35, Discover 60/65, domestic 9) and the Luhn check.
- Passports and permits: E + 8 digits, E + letter + 7 digits, G + 8 digits; Hong Kong/Macau
  permits C + 8 characters, home-return permits H/M + 8 or 10 digits.
- Gateway pseudonyms: ``ps_`` + 32 lowercase hex digits (``hub/gateway/pseudonyms.py``).

Terms: a *token* is one ASCII word (digits, letters, ``_``) of 9 to 40 bytes. Tokens of one
width are held as a *column-major byte matrix* ``t`` of shape (width, n): ``t[j]`` is byte j of
every token, so each test is a vector operation over one contiguous row. A token gets a
*status*: ``VALID`` (the check characters hold, or the format has none and the structure holds)
or ``NEAR`` (a near miss: the structure holds but a check character does not, e.g. a mistyped
or made-up ID). Random digit strings almost never reach VALID for the kinds with check
characters.

Tests run in stages: the cheap structural tests on every token first, the dates and weighted
sums only on the tokens that passed them (usually few, unless the column is a column of IDs).
"""

from __future__ import annotations

from datetime import date
from enum import IntEnum

import numpy as np


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
MIN_TOKEN, MAX_TOKEN = 9, 40
WIDTHS = frozenset({9, 11, 13, 15, 16, 17, 18, 19, 35})  # token widths that some format has

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
_RID_WEIGHTS = [pow(2, 17 - i, 11) for i in range(17)]
_RID_CHECK = np.frombuffer(b"10X98765432", np.uint8)
_NONE = 255  # in the value tables: a byte that is not a character of the alphabet
_CREDIT_VALUE = np.full(256, _NONE, np.uint8)
_CREDIT_VALUE[np.frombuffer(CREDIT_ALPHABET, np.uint8)] = np.arange(31)
_CREDIT_CHAR = np.frombuffer(CREDIT_ALPHABET, np.uint8)
_CREDIT_WEIGHTS = [pow(3, i, 31) for i in range(17)]
_ORG_VALUE = np.full(256, _NONE, np.uint8)
_ORG_VALUE[np.frombuffer(b"0123456789", np.uint8)] = np.arange(10)
_ORG_VALUE[np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", np.uint8)] = np.arange(10, 36)
_ORG_WEIGHTS = [3, 7, 9, 10, 5, 8, 4, 2]
_ORG_CHECK = np.frombuffer(b"?123456789X0", np.uint8)  # indexed by 11 - sum mod 11 (1..11)
_AUTHORITY_OK = np.zeros(256, bool)
_AUTHORITY_OK[np.frombuffer(CREDIT_AUTHORITIES, np.uint8)] = True
_HEX_LOWER = np.zeros(256, bool)
_HEX_LOWER[np.frombuffer(b"0123456789abcdef", np.uint8)] = True
_UPPER_NO_IO = np.zeros(256, bool)
_UPPER_NO_IO[np.frombuffer(b"ABCDEFGHJKLMNPQRSTUVWXYZ", np.uint8)] = True
_DAYS = np.array([0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int16)
_LUHN_DOUBLED = np.array([2 * d - 9 * (2 * d > 9) for d in range(10)] + [0] * 246, np.uint8)
_ZERO = np.uint8(48)


# --- small helpers over column-major matrices --------------------------------------------


def _lookup(table: np.ndarray, t: np.ndarray) -> np.ndarray:
    """table[t] for a byte matrix (np.take: several times faster than fancy indexing)."""
    return np.take(table, t)


def _subset(t: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The tokens at `idx` (no copy when that is all of them)."""
    return t if len(idx) == t.shape[1] else t[:, idx]


def upper(t: np.ndarray) -> np.ndarray:
    """ASCII letters upper-cased (the matrix itself when it has no lower-case letter)."""
    lower = (t - np.uint8(97)) <= 25
    if not lower.any():
        return t
    return t - lower.astype(np.uint8) * np.uint8(32)


def digit_rows(t: np.ndarray) -> np.ndarray:
    """(width, n) bool: which bytes are ASCII digits."""
    return (t - _ZERO) <= 9


def _number(t: np.ndarray, first: int, count: int) -> np.ndarray:
    """The decimal number written by bytes first..first+count of each token (a byte that is no
    digit counts as 9, so the result stays below 10**count)."""
    out = np.zeros(t.shape[1], np.int16)  # count <= 4
    for j in range(first, first + count):
        out = out * np.int16(10) + np.minimum(t[j] - _ZERO, np.uint8(9))
    return out


def _weighted(values: np.ndarray, weights: list[int]) -> np.ndarray:
    """Sum of values[j] * weights[j] per token (values: uint8 rows of character values; every
    sum used here stays below 2**15)."""
    out = np.zeros(values.shape[1], np.int16)
    for row, w in zip(values, weights):
        out += row.astype(np.int16) * np.int16(w)
    return out


def valid_dates(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """True where (year, month, day) is a real calendar date from 1900 to this year."""
    ok = (year >= 1900) & (year <= CURRENT_YEAR) & (month >= 1) & (month <= 12) & (day >= 1)
    m = np.clip(month, 0, 12)
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    limit = np.take(_DAYS, m) - ((m == 2) & ~leap)
    return ok & (day <= limit)


def _province(t: np.ndarray, first: int) -> np.ndarray:
    """Whether bytes first, first+1 (digits) name a province."""
    return np.take(_PROVINCE_OK, (t[first] - _ZERO) * np.uint8(10) + (t[first + 1] - _ZERO))


# --- the formats ---------------------------------------------------------------------------


def resident_id_18(t: np.ndarray, digits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(structure ok, check ok) of 18-byte tokens (upper-cased; `digits` = digit_rows(t))."""
    n = t.shape[1]
    structure = np.zeros(n, bool)
    check = np.zeros(n, bool)
    cand = digits[:17].all(axis=0) & (digits[17] | (t[17] == ord("X"))) & (t[0] != ord("0"))
    idx = np.flatnonzero(cand)
    if not idx.size:
        return structure, check
    s = _subset(t, idx)
    ok = _province(s, 0) & valid_dates(_number(s, 6, 4), _number(s, 10, 2), _number(s, 12, 2))
    if not ok.all():
        idx, s = idx[ok], s[:, ok]
    structure[idx] = True
    total = _weighted(s[:17] - _ZERO, _RID_WEIGHTS)
    check[idx] = np.take(_RID_CHECK, total % 11) == s[17]
    return structure, check


def resident_id_15(t: np.ndarray, digits: np.ndarray) -> np.ndarray:
    """Structure of the 15-digit form (no check character) of 15-byte tokens."""
    out = np.zeros(t.shape[1], bool)
    idx = np.flatnonzero(digits.all(axis=0) & (t[0] != ord("0")))
    if idx.size:
        s = _subset(t, idx)
        out[idx] = _province(s, 0) & valid_dates(1900 + _number(s, 6, 2), _number(s, 8, 2),
                                                 _number(s, 10, 2))
    return out


def credit_code(t: np.ndarray, digits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(structure ok, organisation-code check ok, overall check ok) of 18-byte tokens
    (upper-cased); both checks imply the structure."""
    n = t.shape[1]
    structure, org_ok, overall_ok = np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, bool)
    cand = (np.take(_AUTHORITY_OK, t[0]) & ((t[1] - np.uint8(49)) <= 8)
            & digits[2:8].all(axis=0))
    idx = np.flatnonzero(cand)
    if not idx.size:
        return structure, org_ok, overall_ok
    s = _subset(t, idx)
    values = _lookup(_CREDIT_VALUE, s)
    ok = _province(s, 2) & (values != _NONE).all(axis=0)
    if not ok.all():
        idx, s, values = idx[ok], s[:, ok], values[:, ok]
    structure[idx] = True
    overall = np.take(_CREDIT_CHAR, (31 - _weighted(values[:17], _CREDIT_WEIGHTS) % 31) % 31) \
        == s[17]
    org = _lookup(_ORG_VALUE, s[8:16])  # all in the table: the credit alphabet is a subset
    expected = np.take(_ORG_CHECK, 11 - _weighted(org, _ORG_WEIGHTS) % 11)
    org_ok[idx] = expected == s[16]
    overall_ok[idx] = overall
    return structure, org_ok, overall_ok


def luhn(t: np.ndarray) -> np.ndarray:
    """Luhn check of all-digit tokens."""
    total = np.zeros(t.shape[1], np.int16)
    for k, row in enumerate(t[::-1]):
        d = row - _ZERO
        total += np.take(_LUHN_DOUBLED, d) if k % 2 else d
    return total % 10 == 0


def card_issuer(t: np.ndarray) -> np.ndarray:
    """True where the first digits are a known card issuer prefix (see module doc)."""
    first = t[0] - _ZERO
    two = first * np.uint8(10) + (t[1] - _ZERO)
    if t.shape[0] == 15:
        return (two == 34) | (two == 37)
    four = _number(t, 0, 4)
    return ((two == 62) | (first == 4) | ((two >= 51) & (two <= 55))
            | ((four >= 2221) & (four <= 2720)) | (two == 35) | (two == 60) | (two == 65)
            | (first == 9))


def mobile(t: np.ndarray, all_digits: np.ndarray) -> np.ndarray:
    """Mobile numbers among 11-, 13- (86…) and 15-byte (0086…) all-digit tokens."""
    width = t.shape[0]
    start = {11: 0, 13: 2, 15: 4}[width]
    ok = all_digits & np.take(_MOBILE_OK, _number(t, start, 3))
    for j, c in enumerate({11: b"", 13: b"86", 15: b"0086"}[width]):
        ok &= t[j] == c
    return ok


def pseudonym(t: np.ndarray) -> np.ndarray:
    """Gateway pseudonyms among 35-byte tokens."""
    ok = (t[0] == ord("p")) & (t[1] == ord("s")) & (t[2] == ord("_"))
    return ok & _lookup(_HEX_LOWER, t[3:]).all(axis=0)


def passport(t: np.ndarray, digits: np.ndarray) -> np.ndarray:
    """Passports and permits among 9- and 11-byte tokens (upper-cased)."""
    first, second = t[0], t[1]
    tail_digits = digits[2:].all(axis=0)
    second_digit = digits[1]
    hm = (first == ord("H")) | (first == ord("M"))
    if t.shape[0] == 11:
        return hm & second_digit & tail_digits
    second_letter = np.take(_UPPER_NO_IO, second)
    e_form = (first == ord("E")) & tail_digits & (second_digit | second_letter)
    g_form = (first == ord("G")) & tail_digits & second_digit
    c_form = (first == ord("C")) & tail_digits & (second_digit | second_letter)
    return e_form | g_form | c_form | (hm & tail_digits & second_digit)


# --- classification of tokens --------------------------------------------------------------


class Best:
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


def classify(t: np.ndarray, r: np.ndarray, best: Best) -> None:
    """Offer every format that tokens of this width can have; `r` are their rows in `best`."""
    width = t.shape[0]
    if width not in WIDTHS:
        return
    if width == 35:
        best.offer(r, pseudonym(t), Kind.PSEUDONYM, VALID)
        return
    digits = digit_rows(t)
    all_digits = digits.all(axis=0)
    id_like = np.zeros(t.shape[1], bool)  # a resident ID's or credit code's structure is no card
    if width == 18:
        u = upper(t)  # upper-casing changes no digit, so `digits` holds for `u` too
        structure, ok = resident_id_18(u, digits)
        id_like = structure.copy()
        best.offer(r, ok, Kind.RESIDENT_ID, VALID)
        best.offer(r, structure & ~ok, Kind.RESIDENT_ID, NEAR)
        rest = np.flatnonzero(~ok)
        if rest.size:
            cstruct, org_ok, overall_ok = credit_code(_subset(u, rest), _subset(digits, rest))
            id_like[rest] |= cstruct
            best.offer(r[rest], org_ok & overall_ok, Kind.CREDIT_CODE, VALID)
            best.offer(r[rest], cstruct & (org_ok ^ overall_ok), Kind.CREDIT_CODE, NEAR)
    if width == 15:
        best.offer(r, resident_id_15(t, digits), Kind.RESIDENT_ID_15, VALID)
    if width >= 15:
        idx = np.flatnonzero(all_digits & ~id_like)
        if idx.size:
            s = _subset(t, idx)
            issuer = card_issuer(s)
            ok = np.zeros(idx.size, bool)
            ok[issuer] = luhn(s[:, issuer])
            best.offer(r[idx], ok, Kind.BANK_CARD, VALID)
    if width in (11, 13, 15):
        best.offer(r, mobile(t, all_digits), Kind.MOBILE, VALID)
    if width in (9, 11) and not all_digits.all():
        best.offer(r, passport(upper(t), digits), Kind.PASSPORT, VALID)
