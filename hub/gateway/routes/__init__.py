"""HTTP routes of the gateway, one module per area (queries, datasets)."""
