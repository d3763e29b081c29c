"""Routers of the ledger service, one module per area."""
