"""The `shuyu` command: one group per area (`shuyu ledger …`, `shuyu data …`, …).

Areas are imported only when their group is used, so `shuyu ledger verify` does not pay for
loading the hub or the release review. To add an area, add one line to AREAS.
"""

from __future__ import annotations

import importlib
import sys

import click

# command name → (module, attribute of the click group)
AREAS: dict[str, tuple[str, str]] = {
    "ledger": ("ledger.cli", "ledger"),
    "authority": ("hub.authority_cli", "authority"),
    "data": ("hub.data_cli", "data"),
    "release": ("release_review.cli", "release"),
}


class AreaGroup(click.Group):
    """A group whose subcommands are the areas' own click groups, loaded on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*AREAS, *super().list_commands(ctx)})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in AREAS:
            module, attr = AREAS[name]
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)


@click.group(cls=AreaGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Shuyu (数域): secure data sandbox for the authorized operation of public data."""


def main() -> None:
    try:
        cli(standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
