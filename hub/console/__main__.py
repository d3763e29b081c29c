"""Run the console: ``python -m hub.console`` (the hub starts it so as a managed service).

Listens where ``JUPYTERHUB_SERVICE_URL`` (or ``SHUYU_CONSOLE_SERVICE_URL``) says; the shared
settings (``SHUYU_DATA_DIR``…) name the catalog, ledger and domain store. Exits with a one-line
error when the configuration is incomplete.
"""

from __future__ import annotations

import sys

import uvicorn

from hub.catalog.exceptions import CatalogError
from hub.console.config import ConfigError, load_console_config
from hub.console.main import create_app
from ledger.exceptions import LedgerError


def main() -> None:
    from shuyu_server.lifecycle import end_with_hub

    end_with_hub()
    try:
        config = load_console_config()
        app = create_app(config)
    except (ConfigError, CatalogError, LedgerError, OSError) as e:
        print(f"error: the console cannot start: {e}", file=sys.stderr)
        sys.exit(2)
    host, port = config.bind
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False,
                proxy_headers=False)


if __name__ == "__main__":
    main()
