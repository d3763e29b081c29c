"""Errors of the domain store: one base class, messages written at the raise site."""

from __future__ import annotations


class DomainError(Exception):
    """A domain-store operation was refused or failed; the message says why."""


class DatasetExists(DomainError):
    """The dataset is already loaded and replacing it was not asked for."""


class ChecksumMismatch(DomainError):
    """A file's sha256 differs from the one its catalog promised."""
