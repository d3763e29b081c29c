"""``python -m ledger.service``: the ledger service as JupyterHub starts it (a managed service).

The hub tells a managed service where to listen (``JUPYTERHUB_SERVICE_URL``) and under which
path the proxy routes to it (``JUPYTERHUB_SERVICE_PREFIX``, e.g. ``/services/ledger/``), and
gives it the OAuth client the console pages use (see :mod:`ledger.service.auth`). Everything
else comes from the shared settings (``SHUYU_DATA_DIR`` …). The service owns the log's sequencer
unless ``SHUYU_LEDGER_SEQUENCER=0``. Outside the hub, use ``shuyu ledger serve``.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import uvicorn

from ledger.cli import log_config
from ledger.service.main import create_app
from shuyu_server.settings import load_settings


def main() -> None:
    from shuyu_server.lifecycle import end_with_hub

    end_with_hub()
    settings = load_settings()
    url = urlsplit(os.environ.get("JUPYTERHUB_SERVICE_URL")
                   or f"http://{settings.ledger.host}:{settings.ledger.port}")
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", settings.ledger.prefix).rstrip("/")
    app = create_app(log_config(settings),
                     sequencer=os.environ.get("SHUYU_LEDGER_SEQUENCER", "1") != "0",
                     prefix=prefix)
    uvicorn.run(app, host=url.hostname or "127.0.0.1", port=url.port or settings.ledger.port,
                log_level="info", proxy_headers=False)


if __name__ == "__main__":
    main()
