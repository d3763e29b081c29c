"""The authority console (数据主管部门): server-rendered pages for registering datasets,
operators and analyst accounts, authorization agreements and the data-request queue.

It runs as a hub-managed service at ``/services/console/`` (``python -m hub.console``); only
members of the hub's ``authority`` group may use it (hub OAuth, checked on every request).
Every change goes through the catalog service (``hub.catalog``), which writes the ledger first.
``main.create_app`` assembles the app; ``service.ConsoleService`` is its one business layer.
"""
