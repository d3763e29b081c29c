"""Small server-rendered SVG charts: stacked bars over days, and horizontal bars.

Charts are plain SVG text (no JavaScript, no plotting library): axes with round ticks, a legend,
and a ``<title>`` on every bar so a browser shows the exact figure on hover. Text is escaped;
fonts are left to the browser (``font-family`` lists CJK fonts), so Chinese names render with
the fonts the reader has.
"""

from __future__ import annotations

import math
from html import escape
from typing import Sequence

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
FONT = "font-family=\"'Noto Sans CJK SC','Noto Sans SC','Microsoft YaHei',sans-serif\""


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least `top`."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    n = math.ceil(top / step - 1e-9)
    return [round(i * step, 10) for i in range(n + 1)]


def _num(v: float) -> str:
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.3g}"


def stacked_bars(title: str, categories: Sequence[str], series: dict[str, Sequence[float]],
                 y_label: str = "", width: int = 860, height: int = 300) -> str:
    """Bars per category (e.g. a day), stacked by series (e.g. operators)."""
    left, right, top, bottom = 56, 16, 34, 64
    legend_rows = math.ceil(len(series) / 3)
    height += 18 * legend_rows
    plot_w, plot_h = width - left - right, height - top - bottom - 18 * legend_rows
    totals = [sum(s[i] for s in series.values()) for i in range(len(categories))]
    ticks = nice_ticks(max(totals, default=0))
    scale = plot_h / ticks[-1]
    out = [_open(width, height, title), _title(title, width)]
    for t in ticks:
        y = top + plot_h - t * scale
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
                   'stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
                   f'{FONT}>{_num(t)}</text>')
    n = max(len(categories), 1)
    slot = plot_w / n
    bar = max(1.0, slot * 0.8)
    every = max(1, math.ceil(n / 16))
    for i, cat in enumerate(categories):
        x = left + i * slot + (slot - bar) / 2
        y = top + plot_h
        for k, (name, values) in enumerate(series.items()):
            v = values[i]
            if v <= 0:
                continue
            h = v * scale
            y -= h
            out.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[k % len(PALETTE)]}"><title>{escape(cat)} · {escape(name)}: '
                f"{_num(v)}</title></rect>"
            )
        if i % every == 0:
            cx = left + i * slot + slot / 2
            out.append(f'<text x="{cx:.1f}" y="{top + plot_h + 14}" font-size="10" '
                       f'text-anchor="end" transform="rotate(-40 {cx:.1f} {top + plot_h + 14})" '
                       f"{FONT}>{escape(cat)}</text>")
    out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" '
               f'y2="{top + plot_h}" stroke="#333"/>')
    if y_label:
        out.append(f'<text x="14" y="{top + plot_h / 2:.1f}" font-size="11" '
                   f'transform="rotate(-90 14 {top + plot_h / 2:.1f})" text-anchor="middle" '
                   f"{FONT}>{escape(y_label)}</text>")
    out.extend(_legend(list(series), left, height - 18 * legend_rows - 4, plot_w))
    out.append("</svg>")
    return "\n".join(out)


def horizontal_bars(title: str, labels: Sequence[str], values: Sequence[float],
                    unit: str = "", width: int = 860) -> str:
    """One bar per label (e.g. an authorization), its value written beside it."""
    left, right, top, row = 260, 70, 34, 26
    height = top + row * max(len(labels), 1) + 30
    plot_w = width - left - right
    ticks = nice_ticks(max(values, default=0))
    scale = plot_w / ticks[-1]
    out = [_open(width, height, title), _title(title, width)]
    for t in ticks:
        x = left + t * scale
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{height - 24}" '
                   'stroke="#ddd"/>')
        out.append(f'<text x="{x:.1f}" y="{height - 10}" font-size="11" text-anchor="middle" '
                   f"{FONT}>{_num(t)}</text>")
    for i, (label, v) in enumerate(zip(labels, values)):
        y = top + i * row
        w = v * scale
        out.append(f'<text x="{left - 8}" y="{y + 16}" font-size="12" text-anchor="end" '
                   f"{FONT}>{escape(label)}</text>")
        out.append(f'<rect x="{left}" y="{y + 4}" width="{w:.1f}" height="{row - 8}" '
                   f'fill="{PALETTE[i % len(PALETTE)]}"><title>{escape(label)}: {_num(v)} '
                   f"{escape(unit)}</title></rect>")
        out.append(f'<text x="{left + w + 6:.1f}" y="{y + 16}" font-size="11" {FONT}>'
                   f"{_num(v)}</text>")
    out.append("</svg>")
    return "\n".join(out)


def _open(width: int, height: int, title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">')


def _title(title: str, width: int) -> str:
    return (f'<text x="{width / 2:.0f}" y="20" font-size="14" font-weight="bold" '
            f'text-anchor="middle" {FONT}>{escape(title)}</text>')


def _legend(names: list[str], left: int, y: float, width: float) -> list[str]:
    out = []
    col = width / 3
    for k, name in enumerate(names):
        x = left + (k % 3) * col
        yy = y + 18 * (k // 3)
        out.append(f'<rect x="{x:.1f}" y="{yy - 10:.1f}" width="12" height="12" '
                   f'fill="{PALETTE[k % len(PALETTE)]}"/>')
        out.append(f'<text x="{x + 18:.1f}" y="{yy:.1f}" font-size="12" {FONT}>'
                   f"{escape(name)}</text>")
    return out
