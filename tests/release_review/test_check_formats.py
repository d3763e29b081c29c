"""The vectorized identifier classifier against a plain-Python reference, token by token.

``reference()`` below classifies one token the way ``idformats`` documents it, one character
at a time, written from the standards (GB 11643 MOD 11-2, GB 32100 / GB 11714, Luhn) without
numpy. Thousands of generated tokens (valid, mistyped, upper/lower case, random) are classified
both ways: as whole cells (the fast path over the Arrow data buffer), inside text (the numpy
word splitter), and in text that needs Python (separators elsewhere in the cell).
"""

from __future__ import annotations

import random
from datetime import date

import pyarrow as pa
import pytest

from release_review.checks.detectors import KIND_NAMES, NEAR, VALID, Kind, scan_strings

PROVINCES = {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46,
             50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 91}
CREDIT = "0123456789ABCDEFGHJKLMNPQRTUWXY"
MOBILE_HEADS = ({f"{p}" for p in range(130, 140)} | {f"{p}" for p in range(180, 200)}
                | set("145 146 147 148 149 150 151 152 153 155 156 157 158 159 162 165 166 167 "
                      "170 171 172 173 174 175 176 177 178".split()))


def _date_ok(y: int, m: int, d: int) -> bool:
    if not 1900 <= y <= date.today().year:
        return False
    try:
        date(y, m, d)
    except ValueError:
        return False
    return True


def rid_check(body17: str) -> str:
    return "10X98765432"[sum(int(c) * pow(2, 17 - i, 11) for i, c in enumerate(body17)) % 11]


def credit_checks(code17: str) -> tuple[str, str]:
    """(organisation code check character, overall check character) for 17 characters."""
    org = code17[8:16]
    value = {c: i for i, c in enumerate("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")}
    c = 11 - sum(value[ch] * w for ch, w in zip(org, (3, 7, 9, 10, 5, 8, 4, 2))) % 11
    org_check = {10: "X", 11: "0"}.get(c, str(c))
    overall = (31 - sum(CREDIT.index(ch) * pow(3, i, 31) for i, ch in enumerate(code17)) % 31) % 31
    return org_check, CREDIT[overall]


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def issuer_ok(digits: str) -> bool:
    if len(digits) == 15:
        return digits[:2] in ("34", "37")
    two, four = int(digits[:2]), int(digits[:4])
    return (two in (62, 35, 60, 65) or digits[0] in "49" or 51 <= two <= 55
            or 2221 <= four <= 2720)


def reference(token: str) -> tuple[str | None, int]:
    """(kind name, status) of one ASCII word of 9–40 characters, best kind first."""
    offers: list[tuple[int, str, int]] = []  # (rank, kind, status)

    def offer(kind: Kind, status: int) -> None:
        offers.append((int(kind) if status == VALID else 50 + int(kind), KIND_NAMES[kind], status))

    n, u, digits = len(token), token.upper(), token.isdigit()
    id_like = False
    if n == 35 and token.startswith("ps_") and all(c in "0123456789abcdef" for c in token[3:]):
        offer(Kind.PSEUDONYM, VALID)
    if n == 18:
        rid_ok = False
        if (u[:17].isdigit() and (u[17].isdigit() or u[17] == "X") and u[0] != "0"
                and int(u[:2]) in PROVINCES
                and _date_ok(int(u[6:10]), int(u[10:12]), int(u[12:14]))):
            id_like = True
            rid_ok = rid_check(u[:17]) == u[17]
            offer(Kind.RESIDENT_ID, VALID if rid_ok else NEAR)
        if not rid_ok and (u[0] in "123456789ANY" and u[1] in "123456789" and u[2:8].isdigit()
                           and int(u[2:4]) in PROVINCES and all(c in CREDIT for c in u)):
            id_like = True
            org, overall = credit_checks(u[:17])
            hits = (org == u[16]) + (overall == u[17])
            if hits == 2:
                offer(Kind.CREDIT_CODE, VALID)
            elif hits == 1:
                offer(Kind.CREDIT_CODE, NEAR)
    if n == 15 and digits and token[0] != "0" and int(token[:2]) in PROVINCES and _date_ok(
            1900 + int(token[6:8]), int(token[8:10]), int(token[10:12])):
        offer(Kind.RESIDENT_ID_15, VALID)
    if 15 <= n <= 19 and digits and not id_like and issuer_ok(token) and luhn_ok(token):
        offer(Kind.BANK_CARD, VALID)
    lead = {11: "", 13: "86", 15: "0086"}.get(n)
    if lead is not None and digits and token.startswith(lead) and \
            token[len(lead):len(lead) + 3] in MOBILE_HEADS:
        offer(Kind.MOBILE, VALID)
    if n in (9, 11) and not digits:
        first, second, tail = u[0], u[1], u[2:]
        letter = second in "ABCDEFGHJKLMNPQRSTUVWXYZ"
        ok = tail.isdigit() and (
            (first in "HM" and second.isdigit())
            or (n == 9 and first in "EC" and (second.isdigit() or letter))
            or (n == 9 and first == "G" and second.isdigit()))
        if ok:
            offer(Kind.PASSPORT, VALID)
    if not offers:
        return None, 0
    _, kind, status = min(offers)
    return kind, status


def tokens(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)

    def digits(k: int) -> str:
        return "".join(rng.choice("0123456789") for _ in range(k))

    def resident_id() -> str:
        born = date(rng.randint(1900, date.today().year), rng.randint(1, 12), rng.randint(1, 28))
        body = f"{rng.choice(sorted(PROVINCES))}{digits(4)}{born:%Y%m%d}{digits(3)}"
        return body + rid_check(body)

    def credit_code() -> str:
        body = (rng.choice("123456789ANY") + rng.choice("123456789")
                + f"{rng.choice(sorted(PROVINCES))}{digits(4)}"
                + "".join(rng.choice(CREDIT) for _ in range(8)))
        org, _ = credit_checks(body + "0")
        body17 = body + org
        return body17 + credit_checks(body17)[1]

    def card(length: int) -> str:
        head = rng.choice(["62", "4", "51", "55", "2221", "2720", "35", "60", "65", "9",
                           "34", "37", "30", "1"])
        body = head + digits(length - len(head) - 1)
        return next(body + c for c in "0123456789" if luhn_ok(body + c))

    def mutate(t: str) -> str:
        i = rng.randrange(len(t))
        return t[:i] + rng.choice("0123456789XxAZ") + t[i + 1:]

    makers = [
        resident_id, lambda: resident_id().lower(), credit_code, lambda: credit_code().lower(),
        lambda: card(rng.choice([15, 16, 17, 18, 19])),
        lambda: rng.choice(sorted(MOBILE_HEADS)) + digits(8),
        lambda: "86" + rng.choice(sorted(MOBILE_HEADS)) + digits(8),
        lambda: "0086" + rng.choice(sorted(MOBILE_HEADS)) + digits(8),
        lambda: f"{rng.choice(sorted(PROVINCES))}{digits(4)}{rng.randint(0, 99):02d}"
                f"{rng.randint(1, 12):02d}{rng.randint(1, 31):02d}{digits(3)}",
        lambda: rng.choice("EGCHMegchm") + rng.choice("0123456789ABIOZ") + digits(7),
        lambda: rng.choice("HM") + digits(10),
        lambda: "ps_" + "".join(rng.choice("0123456789abcdef") for _ in range(32)),
        lambda: "ps_" + "".join(rng.choice("0123456789abcdefG") for _ in range(32)),
        lambda: digits(rng.randint(9, 20)),
        lambda: "".join(rng.choice(CREDIT + "IOSVZabc_") for _ in range(rng.choice([9, 11, 18]))),
    ]
    out = []
    for _ in range(count):
        t = rng.choice(makers)()
        out.append(mutate(t) if rng.random() < 0.3 else t)
    return out


def found(cells: list[str] | pa.Array) -> list[tuple[str | None, int]]:
    """The best (kind, status) per cell, as ``reference`` ranks them."""
    arr = cells if isinstance(cells, pa.Array) else pa.array(cells, pa.string())
    hits = scan_strings(arr)
    best: dict[int, tuple[int, str, int]] = {}
    for c, k, s in zip(hits.cell.tolist(), hits.kind.tolist(), hits.status.tolist()):
        rank = k if s == VALID else 50 + k
        if c not in best or rank < best[c][0]:
            best[c] = (rank, KIND_NAMES[Kind(k)], s)
    return [(best[i][1], best[i][2]) if i in best else (None, 0) for i in range(len(arr))]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_whole_cells_agree_with_the_reference(seed):
    values = tokens(seed, 4000)
    assert found(values) == [reference(t) for t in values]


@pytest.mark.parametrize("seed", [4, 5])
def test_tokens_in_text_agree_with_the_reference(seed):
    # numbers (a check character X aside) pass the text prefilter, and no pattern of the
    # Python path can match inside a run of digits
    values = [t for t in tokens(seed, 4000) if t[:-1].isdigit()]
    expected = [reference(t) for t in values]
    assert {k for k, _ in expected} >= {"resident_id", "bank_card", "mobile", "resident_id_15"}
    assert found([f"编号：{t}，见附表" for t in values]) == expected  # words split with numpy
    assert found([f"电话 0871-6512 {t}。" for t in values]) == expected  # the Python path


def test_a_sliced_array_is_read_from_its_offset():
    ids = [t for t in tokens(6, 3000) if len(t) == 18]
    arr = pa.array(["13812345678"] * 5 + ids + [None], pa.string()).slice(5, len(ids))
    assert found(arr) == [reference(t) for t in ids]
