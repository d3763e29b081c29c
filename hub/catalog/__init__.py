"""Catalog and authorizations: datasets and their columns, operators and analysts, authorization
agreements, data requests, and the query-time check the gateway calls.

Use ``open_catalog(settings)`` for a ``CatalogService``; see ``service.py`` for the map of modules.
"""

from hub.catalog.service import CatalogService, open_catalog

__all__ = ["CatalogService", "open_catalog"]
