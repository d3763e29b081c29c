"""Suggested column classes for a dataset being registered (GB/T 37964-2019 classes).

The authority confirms or edits every suggestion; these only save typing and catch what is easy
to overlook. Evidence, strongest first:

1. the release review's identifier detectors (``release_review.checks.identifiers``, the same
   code that scans outputs before they leave): a column the identifiers check would fail —
   valid resident ID numbers, credit codes, bank cards, mobile numbers, passports, plates,
   landlines named as such — is a **direct identifier**;
2. the column's name (English or Chinese): names, addresses, e-mail, and ``…_id``/``…号``
   columns with many distinct values (at least ``ID_SHARE`` of the rows, or more than
   ``GROUP_BY_MAX_DISTINCT``: a household number shared by a few people still names them)
   are direct identifiers; sex, birth, age, ethnic
   group, education, marital status, districts, communities, stops, occupations and other
   demographic or place attributes are **quasi-identifiers**; wages, income, amounts, capital,
   usage, contributions, health and similar are **sensitive attributes**;
3. the type: an unnamed money column (DECIMAL) is suggested sensitive; anything else is
   **other**.

Group-by (may be a dimension of aggregate queries) is suggested for quasi-identifiers and other
columns of at most ``GROUP_BY_MAX_DISTINCT`` distinct values that are not measurements or
exact dates and times, never for direct identifiers or sensitive attributes. Every suggestion carries its reason (a message key and parameters, shown
in the page's language).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from hub.catalog.enums import IdentifierClass
from release_review.checks.base import Verdict
from release_review.checks.detectors import KIND_LABELS, KIND_NAMES
from release_review.checks.identifiers import scan_column

SAMPLE_ROWS = 100_000
GROUP_BY_MAX_DISTINCT = 1_000
ID_SHARE = 0.3  # an ID-named column with this share of distinct values names someone

DIRECT_NAMES = re.compile(
    r"(^|_)(name|full_?name|address|addr|email|e_?mail|id_?card|id_?no|passport|phone|mobile|"
    r"tel)($|_)|姓名|名称|地址|住址|邮箱|身份证|证件号|手机|电话", re.IGNORECASE)
ID_NAMES = re.compile(r"(^|_)(id|no|code|number|num|key)$|(^|_)id_|号$|号码|编号|卡号",
                      re.IGNORECASE)
QUASI_NAMES = re.compile(
    r"sex|gender|birth|age($|_)|(^|_)age|ethnic|nation|race|education|degree|marital|marriage|"
    r"district|county|township|community|village|street|postcode|zip|occupation|job|industry|"
    r"relation|stop|station|legal_form|household_size|founded|"
    r"性别|出生|年龄|民族|文化|学历|婚姻|区县|乡镇|街道|社区|村|邮编|职业|行业|关系|站点|成立",
    re.IGNORECASE)
SENSITIVE_NAMES = re.compile(
    r"wage|salary|income|pay|amount|capital|revenue|debt|loan|balance|usage|consum|contribut|"
    r"pension|medical|insurance|health|diagnos|disease|illness|religio|criminal|conviction|"
    r"employees|kwh|m3|"
    r"工资|薪|收入|金额|资本|缴费|养老|医疗|保险|健康|诊断|疾病|病|宗教|犯罪|用水|用电|从业",
    re.IGNORECASE)


@dataclass
class Suggestion:
    """What the console proposes for one column, and why."""

    column: str
    type: str
    identifier_class: IdentifierClass
    group_by_allowed: bool
    reason: str  # i18n key
    params: dict[str, Any] = field(default_factory=dict)
    distinct: int = 0
    nulls: int = 0
    examples: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"column": self.column, "type": self.type,
                "identifier_class": str(self.identifier_class),
                "group_by_allowed": self.group_by_allowed, "reason": self.reason,
                "params": self.params, "distinct": self.distinct, "nulls": self.nulls}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Suggestion":
        return cls(d["column"], d["type"], IdentifierClass(d["identifier_class"]),
                   bool(d["group_by_allowed"]), d["reason"], dict(d.get("params") or {}),
                   int(d.get("distinct") or 0), int(d.get("nulls") or 0))


def _detector_finding(name: str, col: pa.ChunkedArray) -> dict[str, Any] | None:
    """The strongest failing identifier finding of the release review's check, if any."""
    failing = [f for f in scan_column(name, col, []) if f.verdict is Verdict.FAIL]
    if not failing:
        return None
    best = max(failing, key=lambda f: f.cells)
    return {"kind": KIND_NAMES[best.kind], "label": KIND_LABELS[best.kind], "cells": best.cells}


def _distinct(col: pa.ChunkedArray) -> int:
    try:
        return int(pc.count_distinct(col).as_py())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return 0


def suggest_column(name: str, duck_type: str, col: pa.ChunkedArray) -> Suggestion:
    sample = col.slice(0, SAMPLE_ROWS)
    present = len(sample) - sample.null_count
    distinct = _distinct(sample)
    base = dict(column=name, type=duck_type, distinct=distinct, nulls=col.null_count)
    many = present >= 20 and (distinct >= ID_SHARE * present or distinct > GROUP_BY_MAX_DISTINCT)
    found = _detector_finding(name, sample) if present else None
    if found:
        return Suggestion(identifier_class=IdentifierClass.DIRECT_IDENTIFIER,
                          group_by_allowed=False, reason="suggest.detector", params=found, **base)
    if DIRECT_NAMES.search(name):
        return Suggestion(identifier_class=IdentifierClass.DIRECT_IDENTIFIER,
                          group_by_allowed=False, reason="suggest.direct_name", **base)
    if ID_NAMES.search(name) and many:
        return Suggestion(identifier_class=IdentifierClass.DIRECT_IDENTIFIER,
                          group_by_allowed=False, reason="suggest.unique_id",
                          params={"distinct": distinct, "present": present}, **base)
    groupable = 0 < distinct <= GROUP_BY_MAX_DISTINCT and not duck_type.startswith(
        ("DECIMAL", "DOUBLE", "FLOAT", "REAL", "DATE", "TIMESTAMP", "TIME"))
    if SENSITIVE_NAMES.search(name):
        return Suggestion(identifier_class=IdentifierClass.SENSITIVE, group_by_allowed=False,
                          reason="suggest.sensitive_name", **base)
    if QUASI_NAMES.search(name):
        return Suggestion(identifier_class=IdentifierClass.QUASI_IDENTIFIER,
                          group_by_allowed=groupable, reason="suggest.quasi_name", **base)
    if duck_type.startswith("DECIMAL"):
        return Suggestion(identifier_class=IdentifierClass.SENSITIVE, group_by_allowed=False,
                          reason="suggest.money", **base)
    return Suggestion(identifier_class=IdentifierClass.OTHER, group_by_allowed=groupable,
                      reason="suggest.other", params={"distinct": distinct}, **base)


def suggest_columns(table: pa.Table, types: list[tuple[str, str]]) -> list[Suggestion]:
    return [suggest_column(str(name), typ, col)
            for (name, typ), col in zip(types, table.columns)]
