"""`shuyu ledger …`: the operator's and regulator's command line for the ledger.

Verbs (stable, scripts rely on them): init, append, checkpoint, proof inclusion, proof
consistency, export, verify, witness, serve. Errors go to stderr as one line and exit non-zero.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable

import click

from ledger.exceptions import LedgerError
from ledger.log import Log, LogConfig, init_log
from ledger.note import b64
from shuyu_server.settings import Settings, load_settings

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data directory (default: settings, else ./var).",
)


def log_config(settings: Settings) -> LogConfig:
    return LogConfig(
        ledger_dir=settings.ledger_dir,
        keys_dir=settings.keys_dir,
        database_url=settings.ledger_database_url,
        origin=settings.ledger.origin,
        batch_max_size=settings.ledger.batch_max_size,
        batch_max_age=settings.ledger.batch_max_age_ms / 1000,
    )


def config_for(data_dir: Path | None, **ledger_overrides: Any) -> LogConfig:
    settings = load_settings(data_dir=data_dir)
    if ledger_overrides:
        settings = settings.model_copy(
            update={"ledger": settings.ledger.model_copy(update=ledger_overrides)}
        )
    return log_config(settings)


def fail(message: str, code: int = 1) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def guarded(fn: Callable) -> Callable:
    """Turn ledger errors into one clear line on stderr and exit status 1."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LedgerError as e:
            fail(str(e))
        except (OSError, ValueError) as e:
            fail(f"{type(e).__name__}: {e}")

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


def open_log(data_dir: Path | None) -> Log:
    return Log.open(config_for(data_dir))


@click.group()
def ledger() -> None:
    """The verifiable audit ledger (RFC 9162 tree, C2SP checkpoints, witnesses, tiles)."""


@ledger.command()
@data_dir_option
@click.option("--origin", default=None, help="Log origin and key name (default from settings).")
@guarded
def init(data_dir: Path | None, origin: str | None) -> None:
    """Create the ledger database and signing key (idempotent); print the vkey."""
    cfg = config_for(data_dir, **({"origin": origin} if origin else {}))
    vkey, created = init_log(cfg)
    click.echo(vkey)
    if created:
        click.echo(f"created signing key {cfg.key_path} (keep it secret)", err=True)


@ledger.command()
@data_dir_option
@guarded
def append(data_dir: Path | None) -> None:
    """Append JSON objects from stdin, one a line; print each index.

    Every line is validated before anything is appended: a bad line appends nothing.
    """
    events = []
    for lineno, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as e:
            fail(f"line {lineno}: not JSON ({e})")
        events.append(obj)
    from ledger.entry import encode_entry

    for lineno, obj in enumerate(events, 1):
        try:
            encode_entry(obj)
        except LedgerError as e:
            fail(f"entry {lineno}: {e}")
    log = open_log(data_dir)
    try:
        for index in log.append_many(events):
            click.echo(index)
    finally:
        log.close()


@ledger.command()
@data_dir_option
@guarded
def checkpoint(data_dir: Path | None) -> None:
    """Print the latest signed checkpoint note, with the cosignatures the log holds."""
    log = open_log(data_dir)
    try:
        sys.stdout.write(log.checkpoint_with_cosignatures().decode())
    finally:
        log.close()


@ledger.group()
def proof() -> None:
    """Inclusion and consistency proofs."""


@proof.command("inclusion")
@click.argument("index", type=click.IntRange(min=0))
@click.option("--size", type=click.IntRange(min=1), default=None,
              help="Tree size of a signed checkpoint (default: latest).")
@data_dir_option
@guarded
def proof_inclusion(index: int, size: int | None, data_dir: Path | None) -> None:
    """Print a c2sp.org/tlog-proof@v1 bundle for entry INDEX."""
    from ledger.proofbundle import format_tlog_proof

    log = open_log(data_dir)
    try:
        note = log.checkpoint_with_cosignatures(size)
        from ledger.checkpoint import parse_checkpoint
        from ledger.note import split_note

        cp = parse_checkpoint(split_note(note)[0])
        hashes = log.store.inclusion_proof(index, cp.size)
        sys.stdout.write(format_tlog_proof(index, hashes, note))
    finally:
        log.close()


@proof.command("consistency")
@click.argument("old", type=click.IntRange(min=1))
@click.argument("new", type=click.IntRange(min=1))
@data_dir_option
@guarded
def proof_consistency(old: int, new: int, data_dir: Path | None) -> None:
    """Print the consistency proof from tree size OLD to NEW, base64, one hash a line."""
    if old > new:
        fail(f"OLD ({old}) must not be larger than NEW ({new})")
    log = open_log(data_dir)
    try:
        for h in log.store.consistency_proof(old, new):
            click.echo(b64(h))
    finally:
        log.close()


# --- witness: the regulator's cosigner and the log's list of witnesses --------------------------

witness_dir_option = click.option(
    "--witness-dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The witness's own directory: cosigner key, trusted log keys, cosigned checkpoints.",
)


def _vkey_arg(value: str) -> str:
    """A verifier key given as itself or as the path of a file holding it."""
    path = Path(value)
    return path.read_text().strip() if "+" not in value and path.is_file() else value.strip()


@ledger.group()
def witness() -> None:
    """Witness cosigning (C2SP tlog-witness / tlog-cosignature), regulator and log sides."""


@witness.command("init")
@witness_dir_option
@click.option("--name", required=True, help="Witness key name, e.g. regulator.example/witness.")
@click.option("--log-vkey", "log_vkeys", multiple=True, required=True,
              help="Verifier key of a log to witness, or a file holding it (repeatable).")
@guarded
def witness_init(witness_dir: Path, name: str, log_vkeys: tuple[str, ...]) -> None:
    """Create the cosigner key (idempotent) and trust the log keys; print the witness vkey."""
    from ledger.witness import Witness

    w, created = Witness.init(witness_dir, name, [_vkey_arg(v) for v in log_vkeys])
    click.echo(w.vkey())
    if created:
        click.echo(f"created cosigner key {w.key_path} (keep it secret)", err=True)


@witness.command("serve")
@witness_dir_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8030, show_default=True,
              help="Port to listen on.")
@click.option("--prefix", default="", help="Submission prefix before /add-checkpoint.")
@guarded
def witness_serve(witness_dir: Path, host: str, port: int, prefix: str) -> None:
    """Serve POST <prefix>/add-checkpoint (tlog-witness) until interrupted."""
    from ledger.witness_server import serve

    serve(witness_dir, host, port, prefix)


@witness.command("cosign")
@witness_dir_option
@click.option("--url", default=None, help="Ledger service URL to pull from and hand back to.")
@data_dir_option
@guarded
def witness_cosign(witness_dir: Path, url: str | None, data_dir: Path | None) -> None:
    """Pull the log's latest checkpoint, check it, cosign it and give the cosignature to the log."""
    from ledger.witness import Witness
    from ledger.witness_pull import CosignatureNotDelivered, cosign_from_log, cosign_from_url

    if (url is None) == (data_dir is None):
        fail("give exactly one of --url and --data-dir")
    w = Witness(witness_dir)
    if url is not None:
        try:
            cp, line = cosign_from_url(w, url)
        except CosignatureNotDelivered as e:
            sys.stdout.write(e.line)  # cosigned and recorded: hand it over another way
            raise
    else:
        log = open_log(data_dir)
        try:
            cp, line = cosign_from_log(w, log)
        finally:
            log.close()
    click.echo(f"cosigned {cp.origin} at size {cp.size}", err=True)
    sys.stdout.write(line)


@witness.command("status")
@witness_dir_option
@guarded
def witness_status(witness_dir: Path) -> None:
    """Print the latest cosigned checkpoint of each log: origin, size, root, time (UTC)."""
    from ledger.witness import Witness, describe_state

    w = Witness(witness_dir)
    states = w.all_latest()
    for state in states:
        click.echo(describe_state(state))
    for origin in sorted(set(w.trusted) - {s.checkpoint.origin for s in states}):
        click.echo(f"{origin}\t-\t-\tnever cosigned")
    for path in w.evidence():
        click.echo(f"evidence of a fork: {path}", err=True)


@witness.command("add-to-log")
@data_dir_option
@click.option("--vkey", required=True, help="The witness's verifier key, or a file holding it.")
@click.option("--url", default=None,
              help="Witness submission prefix URL (omit for a witness that pulls).")
@guarded
def witness_add_to_log(data_dir: Path | None, vkey: str, url: str | None) -> None:
    """Register a witness in the log: new checkpoints are offered to it for cosigning."""
    from ledger.witness_client import register_witness

    log = open_log(data_dir)
    try:
        w = register_witness(log, _vkey_arg(vkey), url)
    finally:
        log.close()
    click.echo(f"registered witness {w.name}" + (f" at {url}" if url else " (pull mode)"))


@witness.command("push")
@data_dir_option
@guarded
def witness_push(data_dir: Path | None) -> None:
    """Offer the latest checkpoint to every registered witness now; store their cosignatures."""
    from ledger.witness_client import WitnessPusher

    log = open_log(data_dir)
    pusher = WitnessPusher(log)
    try:
        results = pusher.push_once(force=True)
    finally:
        pusher.stop()
        log.close()
    if not results:
        click.echo("no witness with a URL is registered (see witness add-to-log)", err=True)
    for r in results:
        click.echo(f"{r.witness}\t{r.size}\t{r.outcome}" + (f"\t{r.message}" if r.message else ""))
    if any(r.outcome != "cosigned" and r.outcome != "up-to-date" for r in results):
        sys.exit(1)


# --- export, verify, serve ---------------------------------------------------------------------


def _progress(description: str):  # type: ignore[no-untyped-def]
    """A rich progress bar on stderr (stdout stays clean for scripts)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn(description),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )


@ledger.command()
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@data_dir_option
@guarded
def export(out: Path, data_dir: Path | None) -> None:
    """Write the log as C2SP tlog-tiles into OUT (checkpoint, hash tiles, entry bundles).

    Rerunning on a grown log writes only the new tiles and the checkpoint.
    """
    from ledger.export import export_tiles

    log = open_log(data_dir)
    try:
        with _progress("exporting tiles") as bar:
            task = bar.add_task("export", total=None)
            result = export_tiles(log, out, lambda done, total: bar.update(task, completed=done, total=total))
    finally:
        log.close()
    click.echo(
        f"exported {result.size} entries to {out}: {result.written} tiles written, "
        f"{result.kept} unchanged, {result.removed} superseded partial tiles removed"
    )


@ledger.command()
@click.option("--from", "from_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="A tlog-tiles directory (e.g. written by `shuyu ledger export`).")
@click.option("--url", default=None, help="Base URL of the ledger service or a tlog-tiles mirror.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Data directory of the log: verify its database directly.")
@click.option("--vkey", required=True, help="The log's verifier key, inline or a file holding it.")
@click.option("--since", multiple=True,
              help="A checkpoint seen earlier (file, or the note text); the log must extend it. "
              "Repeatable.")
@click.option("--witness-vkey", multiple=True,
              help="A witness's cosignature key (inline or file) whose cosignatures to check. "
              "Repeatable.")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Worker processes for large logs (default: one per core).")
@click.option("--token", envvar="SHUYU_LEDGER_TOKEN", default=None, show_envvar=True,
              help="With --url of a ledger service under the hub: a regulator's hub API token "
              "(entries are for regulators; the hub's token page makes one).")
@guarded
def verify(
    from_dir: Path | None, url: str | None, data_dir: Path | None, vkey: str,
    since: tuple[str, ...], witness_vkey: tuple[str, ...], jobs: int | None,
    token: str | None,
) -> None:
    """Recompute the whole log and check every stored hash, signature and cosignature.

    Exits non-zero naming the first bad entry if anything was altered, removed, reordered,
    truncated, rolled back or forked.
    """
    from ledger import verify_sources as v
    from ledger.verify import run_verification

    if sum(x is not None for x in (from_dir, url, data_dir)) != 1:
        fail("name exactly one log to verify: --from DIR, --url URL or --data-dir D")
    verifier = v.parse_key(vkey, "--vkey")
    witnesses = [v.parse_key(w, "--witness-vkey") for w in witness_vkey]
    log = None
    try:
        if data_dir is not None:
            log = open_log(data_dir)
            lut = v.open_database(log, verifier, since, witnesses)
        elif from_dir is not None:
            lut = v.open_tiles("dir", str(from_dir), verifier, since, witnesses)
        else:
            lut = v.open_tiles("url", str(url), verifier, since, witnesses, token=token)
        with _progress("verifying entries") as bar:
            task = bar.add_task("verify", total=lut.checkpoint.size)
            report = run_verification(
                lut, jobs, lambda done, total: bar.update(task, completed=done, total=total)
            )
    finally:
        if log is not None:
            log.close()
    sys.stdout.write(report.summary())


@ledger.command()
@data_dir_option
@click.option("--host", default=None, help="Address to listen on (default: settings, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Port (default: settings, 8020).")
@click.option("--prefix", default=None,
              help="URL path prefix to serve under, e.g. /services/ledger (default: settings).")
@click.option("--sequencer/--no-sequencer", default=True, show_default=True,
              help="Own the log's sequencer (appends from this host's services go through it).")
@guarded
def serve(
    data_dir: Path | None, host: str | None, port: int | None, prefix: str | None, sequencer: bool
) -> None:
    """Run the read-only ledger service (tlog-tiles and the JSON API) with uvicorn."""
    import uvicorn

    from ledger.service.main import create_app

    settings = load_settings(data_dir=data_dir)
    app = create_app(
        log_config(settings),
        sequencer=sequencer,
        prefix=settings.ledger.prefix if prefix is None else prefix,
    )
    uvicorn.run(
        app,
        host=host or settings.ledger.host,
        port=port or settings.ledger.port,
        log_level="info",
        proxy_headers=False,
    )


# --- evidence bundles (ledger/evidence_cli.py) ----------------------------------------------------

from ledger.evidence_cli import evidence as _evidence  # noqa: E402  (it imports helpers above)

ledger.add_command(_evidence)
