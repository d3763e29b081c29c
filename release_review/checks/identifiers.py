"""Check "identifiers": personal and entity identifiers in every cell, column name and text.

Scans every string column (and integer columns, where IDs and phone numbers end up when a CSV
is read), every column name, and the text of TXT, Markdown, HTML and JSON files with the
detectors of ``detectors.py``. Dictionary-encoded and low-cardinality columns are scanned once
per distinct value (``distinct.text_values``), and the columns of a large table side by side in
threads.

Verdicts, per artifact (the worst finding wins):

- FAIL: a resident ID whose MOD 11-2 check holds, a gateway pseudonym, a vehicle plate; and the
  kinds whose check is weak or absent (credit code, bank card, mobile, 15-digit ID, passport,
  landline) when the evidence is more than chance: at least half of a column's values are of
  that kind, or the column name or the surrounding text names it (``手机``, ``卡号``, …). In
  prose (TXT, Markdown, HTML, JSON text) a valid mobile, card or credit code fails outright;
  15-digit IDs, passports and landlines need a naming word on their line or the 3 before.
- REVIEW: a near miss (the structure of a resident ID or credit code with a wrong check
  character: mistyped or made-up), and weak kinds found only here and there: a random 11-digit
  number starts like a mobile number about 6% of the time, a random 16-digit one passes Luhn
  with a card prefix about 3% of the time, so a few such cells are a question, not a finding.
- PASS: nothing found.

Evidence lists, per column or text, the kind, how many cells, and at most three masked examples.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from release_review.checks.base import Artifact, CheckContext, CheckResult, Verdict
from release_review.checks.detectors import (
    KIND_LABELS, KIND_NAMES, NEAR, VALID, Hits, Kind, integers_as_text, scan_strings,
)
from release_review.checks.distinct import is_text, sorted_distinct, text_values
from release_review.checks.masking import mask_identifier
from release_review.checks.tables import TableError, format_of, load_table, load_text

CHECK = "identifiers"
ALWAYS_FAIL = frozenset({Kind.RESIDENT_ID, Kind.PSEUDONYM, Kind.PLATE})
TEXT_CONTEXT_NEEDED = frozenset({Kind.RESIDENT_ID_15, Kind.PASSPORT, Kind.LANDLINE})
WORKERS = min(4, os.cpu_count() or 1)  # columns scanned at once (numpy and Arrow release the GIL)
PARALLEL_CELLS = 200_000  # smaller tables are scanned in one thread
COLUMN_SHARE = 0.5  # a weak kind in at least this share of a column's values is no accident
CONTEXT = {
    Kind.MOBILE: r"电话|手机|联系|号码|tel|phone|mobile|cell",
    Kind.LANDLINE: r"电话|座机|联系|号码|tel|phone|fax|传真",
    Kind.BANK_CARD: r"卡号|银行|账号|账户|card|account|acct|bank|iban",
    Kind.CREDIT_CODE: r"信用代码|社会信用|统一代码|企业代码|机构代码|credit|uscc|企业|单位|公司",
    Kind.RESIDENT_ID_15: r"身份证|身份号|证件|公民|id_?card|id_?no|resident",
    Kind.PASSPORT: r"护照|passport|通行证|证件|permit",
}
CONTEXT_RE = {k: re.compile(v, re.IGNORECASE) for k, v in CONTEXT.items()}


@dataclass
class Finding:
    where: str
    kind: Kind
    status: int
    cells: int
    examples: list[str]
    verdict: Verdict

    def to_json(self) -> dict:
        return {
            "where": self.where, "kind": KIND_NAMES[self.kind], "label": KIND_LABELS[self.kind],
            "status": "valid" if self.status == VALID else "near_miss", "cells": self.cells,
            "examples": self.examples, "verdict": str(self.verdict),
        }


def run(ctx: CheckContext) -> list[CheckResult]:
    patterns = [re.compile(p) for p in ctx.pseudonym_patterns]
    results = []
    for artifact in ctx.artifacts:
        if format_of(artifact) in (None, "png"):
            continue  # the type gate refuses other types and re-encodes images
        results.append(_judge(ctx, artifact, patterns))
    if not results:
        results.append(CheckResult(CHECK, Verdict.PASS,
                                   "No tables or text in this request to scan for identifiers."))
    return results


def _judge(ctx: CheckContext, artifact: Artifact, patterns: list[re.Pattern]) -> CheckResult:
    unreadable = None
    try:
        table = load_table(ctx, artifact)
    except TableError as e:
        table, unreadable = None, str(e)
    if table is not None:
        findings, scanned = scan_table(table, patterns)
    else:
        text = _raw_text(artifact) if unreadable else load_text(ctx, artifact) or ""
        findings, scanned = scan_text(text, patterns)
    return _result(artifact, findings, scanned, unreadable)


def _raw_text(artifact: Artifact) -> str:
    try:
        return artifact.path.read_bytes().decode("utf-8", "replace")
    except OSError:
        return ""


def _result(artifact: Artifact, findings: list[Finding], scanned: int,
            unreadable: str | None) -> CheckResult:
    evidence = {"cells_scanned": scanned, "findings": [f.to_json() for f in findings]}
    if unreadable:
        evidence["unreadable_table"] = unreadable
    if not findings:
        return CheckResult(CHECK, Verdict.PASS,
                           f"No identifiers found in {scanned:,} cells or lines.",
                           artifact.name, evidence)
    worst = Verdict.FAIL if any(f.verdict is Verdict.FAIL for f in findings) else Verdict.REVIEW
    shown = [f for f in findings if f.verdict is worst]
    listed = "; ".join(f"{KIND_NAMES[f.kind]}{' (near miss)' if f.status == NEAR else ''} "
                       f"in {f.where} ({f.cells:,} cells)" for f in shown[:4])
    more = f" and {len(shown) - 4} more" if len(shown) > 4 else ""
    if worst is Verdict.FAIL:
        reason = f"Identifiers found: {listed}{more}."
        suggestion = ("Remove these columns or values (pseudonyms too: they link records "
                      "across releases), or release aggregates instead of records.")
    else:
        reason = f"Possible identifiers need a look: {listed}{more}."
        suggestion = ("Confirm these are not identifiers (e.g. codes or amounts that merely look "
                      "like one), or remove them.")
    return CheckResult(CHECK, worst, reason, artifact.name, evidence, suggestion)


# --- tables ----------------------------------------------------------------------------


def scan_table(table: pa.Table, patterns: list[re.Pattern]) -> tuple[list[Finding], int]:
    """Findings per column (and in the column names); the number of cells scanned."""
    findings: list[Finding] = []
    names = pa.array([str(n) for n in table.column_names], pa.string())
    findings += _findings(scan_strings(names, patterns), names, None, "column names",
                          lambda i: names[i].as_py(), len(names))
    columns = [(str(name), col) for name, col in zip(table.column_names, table.columns)]
    if table.num_rows * len(columns) < PARALLEL_CELLS or WORKERS < 2:
        per_column = [scan_column(name, col, patterns) for name, col in columns]
    else:  # the kernels release the GIL: columns are scanned side by side
        with ThreadPoolExecutor(WORKERS, thread_name_prefix="identifiers") as pool:
            per_column = list(pool.map(lambda c: scan_column(c[0], c[1], patterns), columns))
    for found in per_column:
        findings += found
    return findings, table.num_rows * table.num_columns


def scan_column(name: str, col: pa.ChunkedArray | pa.Array,
                patterns: list[re.Pattern]) -> list[Finding]:
    where = f"column {name!r}"
    typ = col.type
    if pa.types.is_dictionary(typ) and not is_text(typ.value_type):
        col, typ = col.cast(typ.value_type), typ.value_type
    if is_text(typ) or pa.types.is_dictionary(typ):
        values, weights = text_values(col)
        present = int(weights.sum()) if weights is not None else len(col) - col.null_count
        if present == 0:
            return []
        hits = scan_strings(values, patterns)
        return _findings(hits, values, weights, where, lambda i: name, present)
    present = len(col) - col.null_count
    as_text = integers_as_text(col) if present else None
    if as_text is None:
        return []
    _, strings = as_text
    return _findings(scan_strings(strings, patterns), strings, None, where, lambda i: name,
                     present)


def _findings(hits: Hits, values: pa.Array, weights: np.ndarray | None, where: str,
              context_of, present: int) -> list[Finding]:
    """One finding per (kind, status) in one column or text."""
    out = []
    if not len(hits):
        return out
    for kind in np.flatnonzero(np.bincount(hits.kind.astype(np.int64))):
        for status in (VALID, NEAR):
            sel = np.flatnonzero((hits.kind == kind) & (hits.status == status))
            if not sel.size:
                continue
            cells = sorted_distinct(hits.cell[sel])
            count = int(weights[cells].sum()) if weights is not None else int(cells.size)
            k = Kind(int(kind))
            examples = list(dict.fromkeys(
                mask_identifier(hits.token(int(i), values), KIND_NAMES[k]) for i in sel[:20]))[:3]
            context = any(_has_context(k, context_of(int(c))) for c in cells[:1000])
            verdict = _verdict(k, status, count / present, context)
            out.append(Finding(where, k, status, count, examples, verdict))
    return out


def _has_context(kind: Kind, text: str | None) -> bool:
    rx = CONTEXT_RE.get(kind)
    return bool(rx and text and rx.search(text))


def _verdict(kind: Kind, status: int, share: float, context: bool) -> Verdict:
    if status == NEAR:
        return Verdict.REVIEW
    if kind in ALWAYS_FAIL or share >= COLUMN_SHARE or context:
        return Verdict.FAIL
    return Verdict.REVIEW


def _text_verdict(kind: Kind, status: int, context: bool) -> Verdict:
    """In prose a number shaped like a mobile, card or credit code is rarely chance (unlike
    a column of random codes); the check-less kinds still need a word that names them."""
    if status == NEAR:
        return Verdict.REVIEW
    if kind in TEXT_CONTEXT_NEEDED and not context:
        return Verdict.REVIEW
    return Verdict.FAIL


# --- text ------------------------------------------------------------------------------


def scan_text(text: str, patterns: list[re.Pattern]) -> tuple[list[Finding], int]:
    """Findings in free text, by line; context is the line a token is on."""
    lines = pa.array(text.split("\n"), pa.string())
    hits = scan_strings(lines, patterns)
    findings = []
    for f in _findings(hits, lines, None, "text", lambda i: lines[i].as_py(), 10**12):
        sel = np.flatnonzero((hits.kind == f.kind) & (hits.status == f.status))
        context = any(_has_context(f.kind, _window(lines, int(c))) for c in hits.cell[sel][:1000])
        f.verdict = _text_verdict(f.kind, f.status, context)
        first = sorted(set((hits.cell[sel] + 1).tolist()))[:10]
        f.where = "line " + ", ".join(map(str, first)) + (" …" if f.cells > len(first) else "")
        findings.append(f)
    return findings, len(lines)


def _window(lines: pa.Array, line: int) -> str:
    """A line and the 3 before it (a table's header row names the column of a cell)."""
    return " ".join(v or "" for v in lines[max(line - 3, 0):line + 1].to_pylist())
