"""Automatic disclosure checks run on every release request (one module per check)."""
