"""Check characters of Chinese identifiers, one element at a time and for whole numpy arrays.

- 公民身份号码 (resident identity number, GB 11643-1999): 6-digit address code, birth date
  YYYYMMDD, 3-digit sequence whose last digit is odd for men and even for women, then a check
  character by ISO 7064 MOD 11-2: weights 2^(17-i) mod 11 for positions i = 0..16, the weighted
  sum mod 11 indexes ``"10X98765432"``.
- 统一社会信用代码 (unified social credit code, GB 32100-2015): 18 characters from the 31-letter
  alphabet ``0-9 A-H J-N P Q R T U W X Y`` (no I, O, S, V, Z): registration authority, entity
  type, 6-digit administrative code, 9-character organisation code, check character. Weights are
  3^i mod 31; the check value is (31 - sum mod 31) mod 31.
- 组织机构代码 (organisation code, GB 11714-1997), positions 9-17 of a credit code: 8 body
  characters and a check character. Weights 3 7 9 10 5 8 4 2 over values 0-9 and A=10 … Z=35;
  check = 11 - sum mod 11, written ``X`` for 10 and ``0`` for 11.

Vectorized functions take uint8 matrices of ASCII codes (one row per identifier) so generators
can build millions of identifiers without a Python loop.
"""

from __future__ import annotations

import numpy as np

RESIDENT_ID_WEIGHTS = np.array([pow(2, 17 - i, 11) for i in range(17)], dtype=np.int64)
RESIDENT_ID_CHECK = "10X98765432"

CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_CODE_WEIGHTS = np.array([pow(3, i, 31) for i in range(17)], dtype=np.int64)

ORG_CODE_WEIGHTS = np.array([3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)

_RESIDENT_CHECK_BYTES = np.frombuffer(RESIDENT_ID_CHECK.encode(), dtype=np.uint8)
_CREDIT_BYTES = np.frombuffer(CREDIT_CODE_ALPHABET.encode(), dtype=np.uint8)
_CREDIT_VALUE = np.full(256, -1, dtype=np.int64)
_CREDIT_VALUE[_CREDIT_BYTES] = np.arange(len(CREDIT_CODE_ALPHABET))
_ORG_VALUE = np.full(256, -1, dtype=np.int64)
_ORG_VALUE[np.frombuffer(b"0123456789", dtype=np.uint8)] = np.arange(10)
_ORG_VALUE[np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)] = np.arange(10, 36)


# --- one identifier --------------------------------------------------------------------


def resident_id_check_char(first17: str) -> str:
    """The 18th character of a resident identity number whose first 17 digits are given."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError(f"need the first 17 digits of a resident ID, got {first17!r}")
    total = sum(int(c) * int(w) for c, w in zip(first17, RESIDENT_ID_WEIGHTS))
    return RESIDENT_ID_CHECK[total % 11]


def credit_code_check_char(first17: str) -> str:
    """The 18th character of a unified social credit code whose first 17 characters are given."""
    if len(first17) != 17 or any(c not in CREDIT_CODE_ALPHABET for c in first17):
        raise ValueError(f"need 17 characters from {CREDIT_CODE_ALPHABET}, got {first17!r}")
    total = sum(CREDIT_CODE_ALPHABET.index(c) * int(w) for c, w in zip(first17, CREDIT_CODE_WEIGHTS))
    return CREDIT_CODE_ALPHABET[(31 - total % 31) % 31]


def org_code_check_char(body8: str) -> str:
    """The 9th character of an organisation code (GB 11714) with the given 8-character body."""
    if len(body8) != 8 or not body8.isascii() or not body8.isalnum() or body8 != body8.upper():
        raise ValueError(f"need 8 characters 0-9/A-Z, got {body8!r}")
    total = sum(int(c, 36) * int(w) for c, w in zip(body8, ORG_CODE_WEIGHTS))
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


# --- whole arrays ----------------------------------------------------------------------


def resident_id_check_bytes(digits17: np.ndarray) -> np.ndarray:
    """Check characters (ASCII codes) for an (n, 17) uint8 matrix of ASCII digits."""
    values = digits17.astype(np.int64) - ord("0")
    return _RESIDENT_CHECK_BYTES[(values @ RESIDENT_ID_WEIGHTS) % 11]


def credit_code_check_bytes(chars17: np.ndarray) -> np.ndarray:
    """Check characters (ASCII codes) for an (n, 17) uint8 matrix of credit-code characters."""
    values = _CREDIT_VALUE[chars17]
    if (values < 0).any():
        raise ValueError("credit code characters outside the GB 32100 alphabet")
    return _CREDIT_BYTES[(31 - (values @ CREDIT_CODE_WEIGHTS) % 31) % 31]


def org_code_check_bytes(body8: np.ndarray) -> np.ndarray:
    """Check characters (ASCII codes) for an (n, 8) uint8 matrix of organisation-code bodies."""
    values = _ORG_VALUE[body8]
    if (values < 0).any():
        raise ValueError("organisation code characters outside 0-9/A-Z")
    check = 11 - (values @ ORG_CODE_WEIGHTS) % 11
    out = (check + ord("0")).astype(np.uint8)
    out[check == 10] = ord("X")
    out[check == 11] = ord("0")
    return out
