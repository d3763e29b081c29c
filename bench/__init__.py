"""Shuyu benchmarks: `python -m bench` runs them all and prints a JSON report (see BENCHMARKS.md)."""
