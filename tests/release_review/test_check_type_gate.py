"""The "type_gate" check: allowed types, sniffed content, limits, images without metadata,
active HTML."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pyarrow as pa
import pytest
from PIL import Image, PngImagePlugin

from release_review.checks import type_gate
from release_review.checks.base import Thresholds, Verdict
from release_review.checks.images import metadata_keys
from tests.release_review.conftest import only


def gate(sub, path, **kw):
    return only(type_gate.run(sub.context(path, **kw)), "type_gate", path.name)


def png_with_metadata() -> bytes:
    im = Image.new("RGB", (40, 30), (200, 10, 10))
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "matplotlib")
    info.add_text("Source", "/home/alice/work/residents_530102199001011234.csv")
    exif = Image.Exif()
    exif[0x010F] = "Camera maker"
    out = io.BytesIO()
    im.save(out, format="PNG", pnginfo=info, exif=exif, dpi=(300, 300))
    return out.getvalue()


def zip_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("sheet.xml", "<x/>")
    return out.getvalue()


@pytest.mark.parametrize("name, content, verdict, words", [
    ("table.csv", "district,n\n五华区,120\n", Verdict.PASS, ""),
    ("table_gbk.csv", "区县,人数\n五华区,120\n".encode("gb18030"), Verdict.PASS, ""),
    ("notes.txt", "结果说明", Verdict.PASS, ""),
    ("notes.md", "# 结果\n\n见图 1。", Verdict.PASS, ""),
    ("doc.json", '{"n": 3, "items": [1, 2]}', Verdict.PASS, ""),
    ("page.html", "<html><body><table><tr><td>1</td></tr></table></body></html>",
     Verdict.PASS, ""),
    ("model.pkl", b"\x80\x04\x95", Verdict.FAIL, "not an allowed type"),
    ("book.xlsx", zip_bytes(), Verdict.FAIL, "not an allowed type"),
    ("table.csv", zip_bytes(), Verdict.FAIL, "ZIP archive"),
    ("data.json", b"\x80\x04\x95\x10pickle", Verdict.FAIL, "pickle"),
    ("data.json", '{"n": 3,', Verdict.FAIL, "not valid JSON"),
    ("notes.txt", b"abc\x00\x01\x02", Verdict.FAIL, "binary"),
    ("image.png", b"GIF89a....", Verdict.FAIL, "GIF image"),
    ("image.png", b"\x89PNG\r\n\x1a\ntruncated", Verdict.FAIL, "not a readable PNG"),
    ("data.parquet", "a,b\n1,2\n", Verdict.FAIL, "not a Parquet file"),
    (".hidden.csv", "a\n1\n", Verdict.FAIL, "hidden"),
    ("page.html", "<html><script>fetch('/x')</script></html>", Verdict.FAIL, "script"),
    ("page.html", "<div onclick='steal()'>x</div>", Verdict.FAIL, "event_handler"),
    ("page.html", "<a href='javascript:alert(1)'>x</a>", Verdict.FAIL, "javascript_url"),
    ("page.html", "<iframe src='x.html'></iframe>", Verdict.FAIL, "embedded_object"),
    ("page.html", "<img src='data:image/png;base64,iVBORw0KGgo='>", Verdict.REVIEW, "data_uri"),
    ("page.html", "<img src='https://example.org/p.png'>", Verdict.REVIEW, "external_resource"),
    ("notes.md", "图\n\n<script>alert(1)</script>\n", Verdict.FAIL, "script"),
    ("notes.md", "![x](https://example.org/x.png)", Verdict.REVIEW, "external_resource"),
])
def test_gate(sub, name, content, verdict, words):
    r = gate(sub, sub.file(name, content))
    assert r.verdict is verdict, r
    assert words.lower() in r.reason.lower()


def test_media_type_mismatch_is_reviewed(sub):
    path = sub.file("t.csv", "a\n1\n")
    ctx = sub.context(path)
    ctx.artifacts[0] = type(ctx.artifacts[0])(**{**ctx.artifacts[0].__dict__,
                                                 "media_type": "image/png"})
    r = only(type_gate.run(ctx), "type_gate")
    assert r.verdict is Verdict.REVIEW and "media type" in r.reason


def test_size_and_row_limits(sub):
    table = pa.table({"district": ["五华区"] * 50, "n": range(50)})
    path = sub.csv("t.csv", table)
    assert gate(sub, path).verdict is Verdict.PASS
    r = gate(sub, path, thresholds=Thresholds(max_rows=49))
    assert r.verdict is Verdict.FAIL and "50 rows" in r.reason
    r = gate(sub, path, thresholds=Thresholds(max_bytes=100))
    assert r.verdict is Verdict.FAIL and "limit" in r.reason


def test_file_changed_after_quarantine_fails(sub):
    path = sub.file("t.csv", "a\n1\n")
    ctx = sub.context(path)
    path.write_text("a\n2\n")
    r = only(type_gate.run(ctx), "type_gate")
    assert r.verdict is Verdict.FAIL and "changed" in r.reason


def test_png_is_reencoded_without_metadata(sub):
    path = sub.file("chart.png", png_with_metadata())
    with Image.open(path) as before:
        assert metadata_keys(before)  # the submitted file carries text, EXIF and dpi
    r = gate(sub, path)
    assert r.verdict is Verdict.PASS, r
    done = r.evidence["reencoded"]
    assert set(done["removed_metadata"]) >= {"exif", "dpi", "text:Source", "text:Software"}
    with Image.open(done["path"]) as after:
        assert metadata_keys(after) == []
        assert after.size == (40, 30) and after.getpixel((5, 5))[:3] == (200, 10, 10)
    assert b"530102199001011234" not in Path(done["path"]).read_bytes()


def test_palette_png_with_transparency_keeps_pixels(sub):
    im = Image.new("P", (4, 4), 1)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    out = io.BytesIO()
    im.save(out, format="PNG", transparency=0)
    r = gate(sub, sub.file("p.png", out.getvalue()))
    assert r.verdict is Verdict.PASS
    with Image.open(r.evidence["reencoded"]["path"]) as after:
        assert after.convert("RGBA").getpixel((1, 1)) == (255, 0, 0, 255)


def test_animated_png_fails(sub):
    frames = [Image.new("RGB", (8, 8), c) for c in ((1, 2, 3), (4, 5, 6))]
    out = io.BytesIO()
    frames[0].save(out, format="PNG", save_all=True, append_images=frames[1:])
    r = gate(sub, sub.file("anim.png", out.getvalue()))
    assert r.verdict is Verdict.FAIL and "animated" in r.reason.lower()


def test_oversized_image_fails(sub):
    out = io.BytesIO()
    Image.new("L", (300, 300)).save(out, format="PNG")
    r = gate(sub, sub.file("big.png", out.getvalue()),
             thresholds=Thresholds(max_image_pixels=10_000))
    assert r.verdict is Verdict.FAIL and "pixels" in r.reason


def test_empty_request_fails(sub):
    assert only(type_gate.run(sub.context())).verdict is Verdict.FAIL
