"""`shuyu release …`: release packages and requests from the command line.

Verbs (stable, scripts rely on them):

- ``verify-package ZIP --vkey V``: verify a released package offline (no server, no database):
  the sealed zip, every file's sha256 against ``PROVENANCE.json``, the ``release.released``
  ledger entry, the checkpoint's signature and the entry's inclusion proof. Exit 0 and one
  ``OK:`` line, or exit 1 with ``error:`` naming what did not verify;
- ``states [--write PATH]``: the request state diagram (``docs/reference/release-states.md``);
- ``list [--status S]``, ``show ID``: requests in the control database (operators);
- ``recheck ID``: run the automatic checks of a request still ``submitted`` (after an outage).

Errors go to stderr as one line and exit non-zero.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import click

from ledger.exceptions import LedgerError
from release_review.exceptions import PackageVerificationError, ReleaseError

data_dir_option = click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Data directory (default: settings, else ./var).")


def fail(message: str, code: int = 1) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def guarded(fn: Callable) -> Callable:
    """Turn known errors into one clear line on stderr and exit status 1."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PackageVerificationError as e:
            where = f" [{e.member}]" if e.member else ""
            hashes = f" (expected {e.expected}, found {e.actual})" if e.expected or e.actual \
                else ""
            fail(f"package does not verify{where}: {e.message}{hashes}")
        except (ReleaseError, LedgerError) as e:
            fail(str(e))
        except OSError as e:
            fail(f"{type(e).__name__}: {e}")

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


@click.group()
def release() -> None:
    """Release review: verify packages, show requests, the state diagram."""


@release.command("verify-package")
@click.argument("zip_path", metavar="ZIP", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--vkey", required=True,
              help="The ledger's verifier key (name+hash+key), or a file holding it.")
@guarded
def verify_package_cmd(zip_path: Path, vkey: str) -> None:
    """Verify a release package offline against the ledger's verifier key."""
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from release_review.package import verify_package, vkey_from

    verifier = vkey_from(vkey)
    data = zip_path.read_bytes()
    steps = ["zip", "files", "entry", "proof"]
    console = _stderr_console()
    with Progress(SpinnerColumn(), TextColumn("verifying {task.description}"), transient=True,
                  console=console, disable=not console.is_terminal) as bar:
        task = bar.add_task("zip", total=len(steps))

        def step(name: str) -> None:
            bar.update(task, description=name, completed=steps.index(name))

        result = verify_package(data, verifier, step)
    click.echo(result.summary())


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


@release.command()
@click.option("--write", "path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the page here instead of printing it.")
def states(path: Path | None) -> None:
    """The request states reference page, generated from release_review/states.py."""
    from release_review.states import states_markdown

    text = states_markdown()
    if path is None:
        click.echo(text, nl=False)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        click.echo(f"wrote {path}", err=True)


def _open(data_dir: Path | None) -> Any:
    from release_review.service import open_service
    from shuyu_server.settings import load_settings

    return open_service(load_settings(data_dir=data_dir))


@release.command("list")
@click.option("--status", "status", default=None, help="Only requests in this status.")
@data_dir_option
@guarded
def list_cmd(status: str | None, data_dir: Path | None) -> None:
    """Release requests, oldest first: id, status, author, authorization, title."""
    from release_review.states import ReleaseStatus

    try:
        wanted = [ReleaseStatus(status)] if status else None
    except ValueError:
        fail(f"status {status!r} is not one of: {', '.join(s.value for s in ReleaseStatus)}")
    service = _open(data_dir)
    try:
        for r in service.store.list_requests(wanted):
            click.echo(f"{r.id}\t{r.status}\t{r.author}\t{r.authorization}\t{r.title}")
    finally:
        service.close()


@release.command()
@click.argument("request_id")
@data_dir_option
@guarded
def show(request_id: str, data_dir: Path | None) -> None:
    """One request as JSON: files, check verdicts, votes, comments, package."""
    import json

    service = _open(data_dir)
    try:
        detail = service.detail(service.get_request(request_id), with_queries=False)
        click.echo(json.dumps(detail.to_json(), ensure_ascii=False, indent=2))
    finally:
        service.close()


@release.command()
@click.argument("request_id")
@data_dir_option
@guarded
def recheck(request_id: str, data_dir: Path | None) -> None:
    """Run the automatic checks of a request that is still submitted."""
    service = _open(data_dir)
    try:
        request = service.run_checks(request_id)
        click.echo(f"{request.id}\t{request.status}")
    finally:
        service.close()
