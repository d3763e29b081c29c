"""Run the review service: ``python -m release_review.web`` (the hub starts it as a service).

Listens where ``JUPYTERHUB_SERVICE_URL`` (or ``SHUYU_REVIEW_SERVICE_URL``) says; the shared
settings (``SHUYU_DATA_DIR``…) name the control database, ledger, domain store and files.
Exits with a one-line error when the configuration is incomplete.
"""

from __future__ import annotations

from release_review.web.config import load_review_config
from release_review.web.main import create_app
from hub.service_config import run_service


def main() -> None:
    run_service("review service", load_review_config, create_app)


if __name__ == "__main__":
    main()
