"""The explorer's filter form: raw strings in, a checked :class:`~ledger.index.EventFilter` out.

Every field is optional. Names (operator, analyst, authorization, dataset) are matched exactly;
the type is an entry type or a family (``release.*``); times are UTC, ``YYYY-MM-DD`` or
``YYYY-MM-DDTHH:MM[:SS]``. ``until`` given as a day includes that whole day. A field that does
not parse is reported in ``errors`` (field → :class:`~ledger.console.i18n.Message`) and the
filter is not used at all: a half-applied filter would show a regulator the wrong events.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Mapping

from ledger.console.i18n import Message
from ledger.index import MAX_VALUE, EventFilter

TYPE_OR_FAMILY = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*)?\Z")
NAME_FIELDS = ("operator", "analyst", "authorization", "dataset")
FIELDS = (*NAME_FIELDS, "type", "since", "until")
TIME_FORMATS = ("%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M")


def _at(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def parse_time(text: str) -> tuple[datetime, bool] | None:
    """(time, whether only a day was given), or None."""
    text = text.strip().removesuffix("Z")
    for fmt in TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt), fmt == "%Y-%m-%d"
        except ValueError:
            continue
    return None


@dataclass
class FilterForm:
    values: dict[str, str] = field(default_factory=dict)  # as typed, for redisplay
    errors: dict[str, Message] = field(default_factory=dict)
    filter: EventFilter = field(default_factory=EventFilter)

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> "FilterForm":
        values = {k: str(raw.get(k) or "").strip() for k in FIELDS}
        form = cls(values=values)
        checked: dict[str, str | None] = {}
        for name in NAME_FIELDS:
            checked[name] = form._name(name, values[name])
        kind = values["type"] or None
        if kind and not TYPE_OR_FAMILY.match(kind):
            form.errors["type"] = Message("err.type")
            kind = None
        checked["type"] = kind
        since = form._time("since", values["since"], end_of_day=False)
        until = form._time("until", values["until"], end_of_day=True)
        if since and until and since >= until:
            form.errors["until"] = Message("err.range")
        checked["since"], checked["until"] = since, until
        if not form.errors:
            form.filter = EventFilter(**checked)
        return form

    def _name(self, name: str, value: str) -> str | None:
        if not value:
            return None
        if len(value) > MAX_VALUE:
            self.errors[name] = Message("err.text_long", {"field": f"filter.{name}",
                                                          "max": MAX_VALUE})
            return None
        if any(unicodedata.category(c) == "Cc" for c in value):
            self.errors[name] = Message("err.text_control", {"field": f"filter.{name}"})
            return None
        return value

    def _time(self, name: str, value: str, end_of_day: bool) -> str | None:
        if not value:
            return None
        parsed = parse_time(value) if len(value) <= 40 else None
        if parsed is None:
            self.errors[name] = Message("err.time", {"field": f"filter.{name}",
                                                     "value": value[:40]})
            return None
        moment, day_only = parsed
        if end_of_day and day_only:
            moment += timedelta(days=1)
        return _at(moment)

    def query(self) -> dict[str, str]:
        """The non-empty values, for links that keep the filter (paging, export)."""
        return {k: v for k, v in self.values.items() if v}

    def describe(self) -> str:
        """The filter in words (English), for evidence bundles."""
        parts = [f"{k}={v}" for k, v in self.query().items()]
        return ", ".join(parts) if parts else "all events"


def parse_indexes(raw: list[str], limit: int) -> tuple[list[int], Message | None]:
    """Entry indexes chosen with the explorer's check boxes."""
    out = []
    for value in raw:
        value = value.strip()
        if not (value.isascii() and value.isdigit()) or len(value) > 18:
            return [], Message("err.index", {"value": value[:30]})
        out.append(int(value))
    out = sorted(set(out))
    if len(out) > limit:
        return [], Message("err.too_many", {"count": len(out), "max": limit})
    return out, None
