"""Errors raised by the ledger, one base class, messages written where they are raised.

Verification errors are typed and carry what a regulator needs to act on them: the key name and
key ID of a bad signature, the index of the first bad entry, the sizes of a bad proof.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base class of every ledger error."""


class ProofError(LedgerError):
    """An inclusion or consistency proof does not verify, or cannot be built for these sizes."""


class FormatError(LedgerError):
    """Bytes that claim to be a note, checkpoint, key, proof or entry are malformed."""


class SignatureError(LedgerError):
    """A signed note has no valid signature from a trusted key, or a known key's signature fails."""

    def __init__(self, message: str, key_name: str | None = None, key_id: int | None = None):
        super().__init__(message)
        self.key_name = key_name
        self.key_id = key_id


class EntryError(LedgerError):
    """An entry offered for appending is not acceptable (not an object, no type, too large, …)."""


class InconsistentTreeError(LedgerError):
    """The stored tree is not an extension of a checkpoint already signed or seen.

    Raised before signing (the ledger never signs two inconsistent checkpoints) and by
    verification (truncation, rollback or fork detected).
    """


class VerificationError(LedgerError):
    """A log failed verification; `index` names the first bad entry when it can be located."""

    def __init__(self, message: str, index: int | None = None):
        super().__init__(message)
        self.index = index


class LedgerUnavailable(LedgerError):
    """The ledger cannot durably record an event now; callers must fail closed."""
