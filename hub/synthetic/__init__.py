"""Synthetic public data of Kunming: residents, households, enterprises, social insurance, bus
cards and trips, water and electricity use; deterministic from a seed, sized by the number of
residents (``shuyu data generate``). Modules: ``generate`` (entry point), one module per group of
datasets (``people``, ``enterprises``, ``insurance``, ``transit``, ``utilities``), ``catalog``
(dataset metadata and ``catalog.json``), ``identifiers`` (check characters), ``columns`` (Arrow
columns from numpy), ``kunming`` and ``vocab`` (geography and vocabularies).

Kept free of heavy imports so the command line can start quickly.
"""

from datetime import date

DEFAULT_AS_OF = date(2025, 12, 31)
"""Reference date: the last day of the year and week the data covers, and its acquisition date."""
