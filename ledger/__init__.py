"""Shuyu's verifiable audit ledger.

A transparency log (RFC 6962 / RFC 9162 Merkle tree) whose heads are C2SP tlog-checkpoint signed
notes, cosignable by witnesses (C2SP tlog-cosignature / tlog-witness) and mirrorable as C2SP
tlog-tiles. This package imports nothing from the rest of Shuyu, so that a regulator can verify a
log with it (or with any other C2SP client) without trusting the services that wrote it.
"""
