"""`shuyu ledger evidence …`: make and check evidence bundles (see :mod:`ledger.evidence`).

``export`` writes a bundle for chosen entries (indexes, or a filter of the regulator console);
``verify`` checks one offline against the log key the regulator trusts and exits non-zero
naming what failed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ledger.cli import _progress, _vkey_arg, data_dir_option, fail, guarded, open_log


@click.group()
def evidence() -> None:
    """Evidence bundles: entries with inclusion proofs, checkpoint and key, verifiable offline."""


@evidence.command("verify")
@click.argument("bundle", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--vkey", required=True, help="The log's verifier key you trust, or a file with it.")
@click.option("--witness-vkey", multiple=True,
              help="A witness's cosignature key (inline or file) whose cosignature the checkpoint "
              "must carry. Repeatable.")
@guarded
def verify_bundle(bundle: Path, vkey: str, witness_vkey: tuple[str, ...]) -> None:
    """Check every entry of BUNDLE against its proof, the checkpoint and the trusted key."""
    from ledger import verify_sources as v
    from ledger.evidence import verify_evidence

    verifier = v.parse_key(_vkey_arg(vkey), "--vkey")
    witnesses = [v.parse_key(_vkey_arg(w), "--witness-vkey") for w in witness_vkey]
    report = verify_evidence(bundle.read_bytes(), verifier, witnesses)
    sys.stdout.write(report.summary())


@evidence.command("export")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--index", "indexes", type=click.IntRange(min=0), multiple=True,
              help="Entry index to include (repeatable).")
@click.option("--type", "kind", default=None, help="Entry type, or a family like release.*")
@click.option("--operator", default=None)
@click.option("--analyst", default=None)
@click.option("--authorization", default=None)
@click.option("--dataset", default=None)
@click.option("--since", default=None, help="UTC date or time (YYYY-MM-DD[THH:MM]), inclusive.")
@click.option("--until", default=None, help="UTC date or time, exclusive.")
@data_dir_option
@guarded
def export_bundle(out: Path, indexes: tuple[int, ...], kind: str | None, operator: str | None,
                  analyst: str | None, authorization: str | None, dataset: str | None,
                  since: str | None, until: str | None, data_dir: Path | None) -> None:
    """Write an evidence bundle to OUT for the given indexes and/or the entries matching a filter."""
    from ledger.console.filters import FilterForm
    from ledger.evidence import build_evidence
    from ledger.index import SubjectIndex, iter_matching

    form = FilterForm.parse({"type": kind, "operator": operator, "analyst": analyst,
                             "authorization": authorization, "dataset": dataset,
                             "since": since, "until": until})
    if form.errors:
        fail("; ".join(f"{k}: {m}" for k, m in form.errors.items()))
    log = open_log(data_dir)
    try:
        selected = set(indexes)
        size = log.store.head().size
        if not form.filter.is_empty():
            index = SubjectIndex(log.config.database_url)
            try:
                index.catch_up(size)
                selected.update(iter_matching(index.reader, form.filter, size))
            finally:
                index.close()
        if not selected:
            fail("nothing selected: give --index or a filter that matches entries")
        with _progress("proving entries") as bar:
            task = bar.add_task("evidence", total=len(selected))
            bundle = build_evidence(
                log, sorted(selected), form.describe() if not indexes else
                f"indexes {sorted(indexes)}" + (f"; {form.describe()}" if not form.filter.is_empty()
                                                else ""),
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    finally:
        log.close()
    out.write_bytes(bundle.data)
    click.echo(f"wrote {len(bundle.indexes)} entries proven at tree size {bundle.size} to {out}")
