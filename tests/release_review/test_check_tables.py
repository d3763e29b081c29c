"""Loading artifacts as tables and text (``tables.py``), table-driven over the formats."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from release_review.checks.tables import TableError, load_table, load_text

ROWS = [{"区县": "五华区", "n": 12}, {"区县": "盘龙区", "n": 30}]


@pytest.mark.parametrize("name, content", [
    ("records.json", json.dumps(ROWS, ensure_ascii=False)),
    ("lines.json", "\n".join(json.dumps(r, ensure_ascii=False) for r in ROWS)),
    ("columns.json", json.dumps({"区县": ["五华区", "盘龙区"], "n": [12, 30]}, ensure_ascii=False)),
    ("split.json", json.dumps({"columns": ["区县", "n"], "data": [["五华区", 12], ["盘龙区", 30]]},
                              ensure_ascii=False)),
    ("pandas_columns.json", json.dumps({"区县": {"0": "五华区", "1": "盘龙区"}, "n": {"0": 12, "1": 30}},
                                       ensure_ascii=False)),
    ("pandas_index.json", json.dumps({"0": ROWS[0], "1": ROWS[1]}, ensure_ascii=False)),
    ("pandas_table.json", json.dumps({"schema": {"fields": []}, "data": ROWS}, ensure_ascii=False)),
    ("table.csv", "区县,n\n五华区,12\n盘龙区,30\n"),
    ("bom.csv", "\ufeff区县,n\n五华区,12\n盘龙区,30\n"),
])
def test_tabular_layouts(sub, name, content):
    ctx = sub.context(sub.file(name, content))
    table = load_table(ctx, ctx.artifacts[0])
    assert table.column_names == ["区县", "n"]
    assert table.to_pylist() == ROWS


def test_mixed_types_become_text(sub):
    ctx = sub.context(sub.file("mixed.json", json.dumps([{"a": 1}, {"a": "x"}, {"a": None}])))
    assert load_table(ctx, ctx.artifacts[0]).column("a").to_pylist() == ["1", "x", None]


@pytest.mark.parametrize("name, content, expected", [
    ("doc.json", '{"title": "报告", "parts": [{"text": "第一段"}, 3]}', ["title", "报告", "第一段", "3"]),
    ("page.html", "<p title='提示'>正文<script>var s = '脚本里';</script></p>", ["提示", "正文", "脚本里"]),
    ("notes.md", "# 标题\n内容", ["# 标题", "内容"]),
])
def test_text_extraction(sub, name, content, expected):
    ctx = sub.context(sub.file(name, content))
    assert load_table(ctx, ctx.artifacts[0]) is None
    text = load_text(ctx, ctx.artifacts[0])
    assert all(part in text for part in expected)


def test_unreadable_tables_raise_clear_errors(sub):
    ctx = sub.context(sub.file("bad.parquet", b"PAR1 not really PAR1"), sub.file("e.csv", ""))
    with pytest.raises(TableError, match="not a readable Parquet"):
        load_table(ctx, ctx.artifacts[0])
    with pytest.raises(TableError, match="empty"):
        load_table(ctx, ctx.artifacts[1])


def test_tables_are_loaded_once_per_run(sub):
    ctx = sub.context(sub.parquet("t.parquet", pa.table({"x": [1, 2]})))
    assert load_table(ctx, ctx.artifacts[0]) is load_table(ctx, ctx.artifacts[0])
