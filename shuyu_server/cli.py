"""The `shuyu` command: one group per area (`shuyu ledger …`, later `shuyu data …`, …)."""

from __future__ import annotations

import sys

import click

from hub.authority_cli import authority
from hub.data_cli import data
from ledger.cli import ledger


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Shuyu (数域): secure data sandbox for the authorized operation of public data."""


cli.add_command(ledger)
cli.add_command(authority)
cli.add_command(data)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
