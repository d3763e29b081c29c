"""Which columns of a submitted table are which columns of the source datasets.

A table column is taken for a source column when its name equals the source column's name or its
catalog label (the Chinese field name), ignoring case and surrounding spaces. One table column
can map to the same-named column of several datasets (``district`` is in most of them).
"""

from __future__ import annotations

from dataclasses import dataclass

from release_review.checks.base import CheckContext, ColumnInfo, SourceDataset

DIRECT = "direct_identifier"
QUASI = "quasi_identifier"
SENSITIVE = "sensitive"


@dataclass(frozen=True)
class Mapped:
    column: str  # the submitted table's column
    dataset: str
    source: ColumnInfo


def _key(name: str) -> str:
    return str(name).strip().casefold()


def map_columns(ctx: CheckContext, names: list[str]) -> list[Mapped]:
    out = []
    for ds in ctx.sources:
        index: dict[str, ColumnInfo] = {}
        for c in ds.columns:
            index.setdefault(_key(c.name), c)
            if c.label:
                index.setdefault(_key(c.label), c)
        for name in names:
            found = index.get(_key(name))
            if found is not None:
                out.append(Mapped(name, ds.name, found))
    return out


def by_dataset(mapped: list[Mapped]) -> dict[str, list[Mapped]]:
    out: dict[str, list[Mapped]] = {}
    for m in mapped:
        if all(x.column != m.column for x in out.get(m.dataset, [])):
            out.setdefault(m.dataset, []).append(m)
    return out


def source(ctx: CheckContext, dataset: str) -> SourceDataset | None:
    return next((d for d in ctx.sources if d.name == dataset), None)


def entity_column(ds: SourceDataset) -> str | None:
    """The column naming whom a row is about: the dataset's first direct identifier (as the
    gateway's group-size count uses it)."""
    return next((c.name for c in ds.columns if c.identifier_class == DIRECT), None)
