"""Check "type_gate": only allowed, well-formed, bounded files leave; images lose their metadata.

Per artifact:

- the extension must be one of CSV, Parquet, PNG, JSON, TXT, Markdown, HTML, and the name must
  not be hidden (``.name``);
- the content must be what the extension says (sniffed: magic numbers of PNG and Parquet, no
  archive, executable, PDF, other image or pickle disguised as text, text decodable as UTF-8 or
  GB 18030, JSON that parses, CSV and Parquet that read as tables);
- the file must still have the size and sha256 it was quarantined with, be at most
  ``thresholds.max_bytes``, and a table at most ``thresholds.max_rows`` rows;
- a PNG is re-encoded with only its pixels (``images``); the re-encoded file, whose path and
  sha256 the evidence gives, is what gets released;
- HTML (and HTML inside Markdown) must not contain scripts, event handlers, ``javascript:``
  links, embedded objects or frames, forms or refresh redirects (FAIL: active content runs in
  the reviewer's and the recipient's browser and can carry or fetch data no check has seen);
  embedded ``data:`` URIs and external resources are sent for review.

A declared media type that disagrees with the extension is sent for review.
"""

from __future__ import annotations

import codecs
import hashlib
import re
from pathlib import Path

from release_review.checks.base import Artifact, CheckContext, CheckResult, Verdict
from release_review.checks.htmltext import parse_html
from release_review.checks.images import ImageRefused, reencode
from release_review.checks.tables import (
    EXTENSIONS, TABULAR, TableError, decode_text, format_of, load_table,
)

CHECK = "type_gate"
SNIFF_BYTES = 1 << 20
MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG image"), (b"PAR1", "Parquet file"), (b"PK\x03\x04", "ZIP archive"),
    (b"PK\x05\x06", "ZIP archive"), (b"%PDF", "PDF document"), (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF8", "GIF image"), (b"\x7fELF", "ELF executable"), (b"MZ", "Windows executable"),
    (b"\x1f\x8b", "gzip archive"), (b"BZh", "bzip2 archive"), (b"\xfd7zXZ", "xz archive"),
    (b"7z\xbc\xaf\x27\x1c", "7z archive"), (b"Rar!", "RAR archive"),
    (b"SQLite format 3\x00", "SQLite database"), (b"ARROW1", "Arrow IPC file"),
    (b"\x80\x02", "Python pickle"), (b"\x80\x03", "Python pickle"), (b"\x80\x04", "Python pickle"),
    (b"\x80\x05", "Python pickle"), (b"\xd0\xcf\x11\xe0", "OLE document (xls/doc)"),
    (b"RIFF", "RIFF media"), (b"II*\x00", "TIFF image"), (b"MM\x00*", "TIFF image"),
    (b"\x93NUMPY", "numpy array"), (b"\x89HDF", "HDF5 file"),
)
MEDIA_TYPES = {
    "csv": {"text/csv", "application/csv", "text/plain"},
    "parquet": {"application/vnd.apache.parquet", "application/x-parquet",
                "application/octet-stream", "application/parquet"},
    "png": {"image/png"}, "json": {"application/json", "text/json", "text/plain"},
    "txt": {"text/plain"}, "markdown": {"text/markdown", "text/x-markdown", "text/plain"},
    "html": {"text/html"},
}
ACTIVE = {"script", "event_handler", "javascript_url", "embedded_object", "form", "meta_refresh"}
MD_REMOTE = re.compile(r"!\[[^\]]*\]\(\s*(?:https?:|//|data:)", re.IGNORECASE)


def run(ctx: CheckContext) -> list[CheckResult]:
    results = [_judge(ctx, a) for a in ctx.artifacts]
    return results or [CheckResult(CHECK, Verdict.FAIL, "The request has no files.")]


def _judge(ctx: CheckContext, artifact: Artifact) -> CheckResult:
    problems: list[tuple[Verdict, str]] = []
    evidence: dict = {"size": artifact.size}
    fmt = format_of(artifact)
    evidence["format"] = fmt
    if Path(artifact.name).name.startswith("."):
        problems.append((Verdict.FAIL, "hidden file names are not allowed"))
    if fmt is None:
        allowed = ", ".join(sorted(set(EXTENSIONS)))
        problems.append((Verdict.FAIL, f"{Path(artifact.name).suffix or 'no extension'} is not "
                                       f"an allowed type (allowed: {allowed})"))
        return _result(artifact, problems, evidence)
    media = (artifact.media_type or "").split(";")[0].strip().lower()
    if media and media not in MEDIA_TYPES[fmt]:
        problems.append((Verdict.REVIEW, f"declared media type {media} does not match .{fmt}"))
    data = _read_checked(ctx, artifact, problems)
    if data is None:
        return _result(artifact, problems, evidence)
    sniffed = _sniff(fmt, data)
    if sniffed:
        problems.append((Verdict.FAIL, sniffed))
        return _result(artifact, problems, evidence)
    if fmt in TABULAR:
        _check_table(ctx, artifact, fmt, problems, evidence)
    elif fmt == "png":
        _check_image(ctx, artifact, problems, evidence)
    if fmt in ("html", "markdown"):
        _check_html(data, fmt, problems, evidence)
    return _result(artifact, problems, evidence)


def _read_checked(ctx: CheckContext, artifact: Artifact, problems) -> bytes | None:
    try:
        size = artifact.path.stat().st_size
    except OSError as e:
        problems.append((Verdict.FAIL, f"the quarantined file cannot be read: {e.strerror or e}"))
        return None
    if size > ctx.thresholds.max_bytes:
        problems.append((Verdict.FAIL, f"{size:,} bytes is more than the limit of "
                                       f"{ctx.thresholds.max_bytes:,}"))
        return None
    data = artifact.path.read_bytes()
    if size != artifact.size or hashlib.sha256(data).hexdigest() != artifact.sha256:
        problems.append((Verdict.FAIL, "the file changed after it was quarantined (size or "
                                       "sha256 differs from the submission)"))
        return None
    return data


def _sniff(fmt: str, data: bytes) -> str | None:
    """Why the content is not what the extension says, or None."""
    found = next((what for magic, what in MAGIC if data.startswith(magic)), None)
    if fmt == "png":
        return None if found == "PNG image" else f"content is {found or 'not a PNG image'}"
    if fmt == "parquet":
        ok = data.startswith(b"PAR1") and data.endswith(b"PAR1") and len(data) >= 12
        return None if ok else f"content is {found or 'not a Parquet file'}"
    if found:
        return f"content is a {found}, not {fmt} text"
    head = data[:SNIFF_BYTES]
    if b"\x00" in head:
        return "content is binary (NUL bytes), not text"
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    for encoding in ("utf-8", "gb18030"):
        try:
            codecs.getincrementaldecoder(encoding)().decode(head, final=len(data) <= SNIFF_BYTES)
            return None
        except UnicodeDecodeError:
            continue
    return "content is not UTF-8 or GB 18030 text"


def _check_table(ctx, artifact, fmt, problems, evidence) -> None:
    try:
        table = load_table(ctx, artifact)
    except TableError as e:
        problems.append((Verdict.FAIL, str(e)))
        return
    if table is None:  # JSON that is not a table: fine as a document
        try:
            decode_text(artifact.path.read_bytes())
        except TableError as e:
            problems.append((Verdict.FAIL, str(e)))
        return
    evidence.update(rows=table.num_rows, columns=table.num_columns)
    if table.num_rows > ctx.thresholds.max_rows:
        problems.append((Verdict.FAIL, f"{table.num_rows:,} rows is more than the limit of "
                                       f"{ctx.thresholds.max_rows:,}"))


def _check_image(ctx, artifact, problems, evidence) -> None:
    out = ctx.derived_dir or artifact.path.parent / "derived"
    try:
        done = reencode(artifact.path, out, ctx.thresholds.max_image_pixels)
    except ImageRefused as e:
        problems.append((Verdict.FAIL, str(e)))
        return
    evidence["reencoded"] = {"path": str(done.path), "sha256": done.sha256, "size": done.size,
                             "width": done.width, "height": done.height,
                             "removed_metadata": done.removed}


def _check_html(data: bytes, fmt: str, problems, evidence) -> None:
    try:
        text = decode_text(data)
    except TableError as e:
        problems.append((Verdict.FAIL, str(e)))
        return
    findings = parse_html(text).findings
    if fmt == "markdown":
        findings += [("external_resource", m.group()) for m in MD_REMOTE.finditer(text)]
    evidence["html_findings"] = [{"kind": k, "detail": d} for k, d in findings[:50]]
    active = sorted({k for k, _ in findings if k in ACTIVE})
    passive = sorted({k for k, _ in findings if k not in ACTIVE})
    if active:
        problems.append((Verdict.FAIL, f"active content ({', '.join(active)}): export a static "
                                       "page or an image instead"))
    if passive:
        problems.append((Verdict.REVIEW, f"embedded or external content ({', '.join(passive)})"))


def _result(artifact: Artifact, problems, evidence) -> CheckResult:
    evidence["problems"] = [{"verdict": str(v), "problem": p} for v, p in problems]
    if not problems:
        what = "re-encoded without metadata; the re-encoded file is what will be released" \
            if "reencoded" in evidence else "allowed type, content matches, within limits"
        return CheckResult(CHECK, Verdict.PASS, f"{evidence['format'].upper()}: {what}.",
                           artifact.name, evidence)
    worst = Verdict.FAIL if any(v is Verdict.FAIL for v, _ in problems) else Verdict.REVIEW
    text = "; ".join(p for v, p in problems if v is worst)
    suggestion = ("Submit CSV, Parquet, PNG, JSON, TXT, Markdown or static HTML within the limits."
                  if worst is Verdict.FAIL else None)
    return CheckResult(CHECK, worst, text[0].upper() + text[1:] + ".", artifact.name, evidence,
                       suggestion)
