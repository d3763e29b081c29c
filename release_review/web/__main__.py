"""Run the review service: ``python -m release_review.web`` (the hub starts it as a service).

Listens where ``JUPYTERHUB_SERVICE_URL`` (or ``SHUYU_REVIEW_SERVICE_URL``) says; the shared
settings (``SHUYU_DATA_DIR``…) name the control database, ledger, domain store and files.
Exits with a one-line error when the configuration is incomplete.
"""

from __future__ import annotations

import sys

import uvicorn

from hub.catalog.exceptions import CatalogError
from ledger.exceptions import LedgerError
from release_review.exceptions import ReleaseError
from release_review.web.config import ConfigError, load_review_config
from release_review.web.main import create_app


def main() -> None:
    from shuyu_server.lifecycle import end_with_hub

    end_with_hub()
    try:
        config = load_review_config()
        app = create_app(config)
    except (ConfigError, CatalogError, LedgerError, ReleaseError, OSError) as e:
        print(f"error: the review service cannot start: {e}", file=sys.stderr)
        sys.exit(2)
    host, port = config.bind
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False,
                proxy_headers=False)


if __name__ == "__main__":
    main()
