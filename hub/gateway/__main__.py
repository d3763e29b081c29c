"""Run the gateway: ``python -m hub.gateway`` (the hub starts it so as a managed service).

Listens where ``JUPYTERHUB_SERVICE_URL`` (or ``SHUYU_GATEWAY_SERVICE_URL``) says, and also on
``SHUYU_GATEWAY_SANDBOX_IP`` at that port when the hub runs sandboxes; the shared
settings (``SHUYU_DATA_DIR``…) name the catalog, ledger, domain store and keys. Exits with a
one-line error when the configuration is incomplete.
"""

from __future__ import annotations

from hub.gateway.config import load_gateway_config
from hub.gateway.main import create_app
from hub.service_config import run_service


def main() -> None:
    run_service("gateway", load_gateway_config, create_app)


if __name__ == "__main__":
    main()
