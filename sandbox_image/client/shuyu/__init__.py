"""Shuyu (数域) analyst client, used from notebooks inside the sandbox.

It reaches the query gateway and the release review service over HTTP with the hub token the
sandbox was started with. Planned entry points: ``shuyu.datasets()``, ``shuyu.describe(name)``,
``shuyu.query(sql)``, ``shuyu.release.submit(obj, title=..., purpose=..., context=...)`` and
``shuyu.release.status()``.
"""

__version__ = "0.1.0"
