"""Input checks: names, codes, numbers and times, each refusing bad input with what was wrong.

These check the *form* of values (``InvalidInput``). What the rules allow for well-formed values
(grades, terms, statuses) is in ``policies.py``.

Names that become identifiers elsewhere are strict: a dataset name is the DuckDB table name and
the Parquet file name in the domain store; an analyst name is the JupyterHub user name.
"""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import date, datetime, timedelta, timezone
from typing import Iterable, TypeVar

from hub.catalog.enums import LabelledEnum
from hub.catalog.exceptions import InvalidInput

E = TypeVar("E", bound=LabelledEnum)

DATASET_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}\Z")
COLUMN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}\Z")
USER_NAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}\Z")
CREDIT_CODE_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
EPSILON_MAX = 20.0
MIN_GROUP_SIZE_RANGE = (2, 100_000)
CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")


def choice(enum: type[E], value: object, what: str) -> E:
    """A member of `enum` named by value, name or Chinese label; InvalidInput lists the choices."""
    try:
        return enum.parse(value, what)
    except ValueError as e:
        raise InvalidInput(str(e)) from None


def dataset_name(name: object) -> str:
    if not isinstance(name, str) or not DATASET_NAME.match(name):
        raise InvalidInput(
            f"dataset name {name!r} is not valid: use 1-63 lowercase letters, digits and _, "
            "starting with a letter (it is the table name in the domain store)"
        )
    return name


def column_name(name: object, dataset: str = "") -> str:
    if not isinstance(name, str) or not COLUMN_NAME.match(name):
        where = f" in dataset {dataset!r}" if dataset else ""
        raise InvalidInput(
            f"column name {name!r}{where} is not valid: use 1-63 letters, digits and _, "
            "not starting with a digit"
        )
    return name


def user_name(name: object) -> str:
    if not isinstance(name, str) or not USER_NAME.match(name):
        raise InvalidInput(
            f"analyst user name {name!r} is not valid: use 1-64 lowercase letters, digits and "
            ". _ @ -, starting with a letter or digit (it is the JupyterHub user name)"
        )
    return name


def text(value: object, what: str, max_len: int, required: bool = True) -> str:
    """Stripped text without control characters; refuses empty text when required."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be text, not {type(value).__name__}")
    value = value.strip()
    if required and not value:
        raise InvalidInput(f"{what} is required and must not be empty")
    if len(value) > max_len:
        raise InvalidInput(f"{what} is {len(value)} characters long; the limit is {max_len}")
    if any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in value):
        raise InvalidInput(f"{what} contains control characters")
    return value


def optional_text(value: object, what: str, max_len: int) -> str | None:
    cleaned = text(value, what, max_len, required=False)
    return cleaned or None


def credit_code(code: object) -> str:
    """A unified social credit code (统一社会信用代码, GB 32100-2015) with a valid check char."""
    if not isinstance(code, str):
        raise InvalidInput(f"unified social credit code must be text, not {type(code).__name__}")
    code = code.strip().upper()
    if len(code) != 18 or any(c not in CREDIT_CODE_CHARS for c in code):
        raise InvalidInput(
            f"unified social credit code {code!r} must be 18 characters from "
            f"{CREDIT_CODE_CHARS} (GB 32100-2015)"
        )
    total = sum(CREDIT_CODE_CHARS.index(c) * w for c, w in zip(code[:17], CREDIT_CODE_WEIGHTS))
    expected = CREDIT_CODE_CHARS[(31 - total % 31) % 31]
    if code[17] != expected:
        raise InvalidInput(
            f"unified social credit code {code!r} has check character {code[17]!r}, "
            f"expected {expected!r}: it is mistyped"
        )
    return code


def epsilon(value: object, dataset: str = "") -> float:
    """A privacy budget ε: a finite number in (0, 20] (the range AWS Clean Rooms accepts)."""
    where = f" for dataset {dataset!r}" if dataset else ""
    try:
        eps = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInput(f"privacy budget (epsilon){where} {value!r} is not a number") from None
    if isinstance(value, bool) or not math.isfinite(eps) or not 0 < eps <= EPSILON_MAX:
        raise InvalidInput(
            f"privacy budget (epsilon){where} must be greater than 0 and at most {EPSILON_MAX:g}, "
            f"got {value!r}"
        )
    return eps


def min_group_size(value: object) -> int:
    low, high = MIN_GROUP_SIZE_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(
            f"minimum group size must be a whole number from {low} to {high}, got {value!r}"
        )
    return value


def aware(at: object, what: str) -> datetime:
    if not isinstance(at, datetime):
        raise InvalidInput(f"{what} must be a date and time, got {at!r}")
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidInput(f"{what} {at.isoformat()} has no time zone; give one (e.g. +08:00)")
    return at.astimezone(timezone.utc)


def parse_time(value: str, what: str, end_of_day: bool = False) -> datetime:
    """An ISO 8601 date or date-time. A bare date is a day in China Standard Time (UTC+8): its
    start, or with `end_of_day` its end (so ``--end 2030-12-31`` includes that whole day).
    A date-time without a zone is refused rather than guessed."""
    raw = value.strip() if isinstance(value, str) else value
    if isinstance(raw, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            raise InvalidInput(f"{what} {value!r} is not a real date") from None
        if end_of_day:
            day = day + timedelta(days=1)
        start = datetime(day.year, day.month, day.day, tzinfo=CHINA_STANDARD_TIME)
        return start.astimezone(timezone.utc)
    try:
        parsed = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"{what} {value!r} is not a date (YYYY-MM-DD) or ISO 8601 date-time"
        ) from None
    return aware(parsed, what)


def parse_date(value: object, what: str) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    raw = str(value).strip()
    try:
        if len(raw) == 10:
            return date.fromisoformat(raw)
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).date()
    except ValueError:
        raise InvalidInput(f"{what} {value!r} is not a date (YYYY-MM-DD)") from None


def unique_names(names: Iterable[str], what: str) -> list[str]:
    """The names in order, refusing duplicates by name."""
    seen: set[str] = set()
    out: list[str] = []
    dupes: list[str] = []
    for name in names:
        if name in seen:
            dupes.append(name)
        seen.add(name)
        out.append(name)
    if dupes:
        raise InvalidInput(f"{what} are listed more than once: {', '.join(sorted(set(dupes)))}")
    return out
