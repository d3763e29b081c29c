"""Run the console: ``python -m hub.console`` (the hub starts it so as a managed service).

Listens where ``JUPYTERHUB_SERVICE_URL`` (or ``SHUYU_CONSOLE_SERVICE_URL``) says; the shared
settings (``SHUYU_DATA_DIR``…) name the catalog, ledger and domain store. Exits with a one-line
error when the configuration is incomplete.
"""

from __future__ import annotations

from hub.console.config import load_console_config
from hub.console.main import create_app
from hub.service_config import run_service


def main() -> None:
    run_service("console", load_console_config, create_app)


if __name__ == "__main__":
    main()
