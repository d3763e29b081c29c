"""The governed query gateway: a JupyterHub service between sandboxes and the domain store.

Map of the package (one concern per module):

- ``main``: assembles the FastAPI app (routers under the hub service prefix, one error handler);
- ``deps``: request dependencies, ``CurrentUser`` (hub token → verified user) and ``Service``;
- ``routes/queries.py``, ``routes/datasets.py``: the HTTP API; ``schemas``: its shapes;
- ``config``: the gateway's settings; ``identity``: asking the hub who a token belongs to;
- ``service``: ``QueryService``, the one business-logic layer;
- ``policy`` (with ``sqlrules``): what SQL may run; ``aggregation``: the aggregation rule and
  minimum group size; ``sources`` and ``pseudonyms``: what a dataset looks like to a query;
- ``plancache``: checked and rewritten queries remembered per SQL text and grant state (the
  authorization check itself runs on every query);
- ``engine``: DuckDB execution with limits; ``results``: Arrow IPC pages and result hashes;
- ``audit``: the ``query`` and ``query.denied`` ledger entries; ``exceptions``: errors;
- ``timings``: where each query's time goes (optional per-query log for benchmarks).

Run it with ``python -m hub.gateway`` (the hub starts it that way as a managed service).
"""
