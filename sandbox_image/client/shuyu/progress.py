"""A rich progress bar over result pages, shown only for large results."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


@contextmanager
def page_progress(show: bool, total_bytes: int, rows: int) -> Iterator[Callable[[int], None]]:
    """Yields ``advance(nbytes)``; draws a transient bar when `show`."""
    if not show:
        yield lambda n: None
        return
    with Progress(
        TextColumn(f"[bold]shuyu[/] {rows:,} rows"), BarColumn(), DownloadColumn(),
        TransferSpeedColumn(), TimeRemainingColumn(), transient=True,
    ) as bar:
        task = bar.add_task("result", total=total_bytes)
        yield lambda n: bar.advance(task, n)
