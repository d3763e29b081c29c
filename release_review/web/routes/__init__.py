"""Routers of the review service, one per area: ``api`` (the client), ``pages`` (browsers),
``oauth`` (hub login for browsers)."""
