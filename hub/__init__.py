"""Control plane: JupyterHub config and spawner hooks, catalog and authorizations, query gateway."""
