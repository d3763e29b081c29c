"""The ledger service: a read-only HTTP view of the log for regulators and mirrors.

C2SP tlog-tiles (``/checkpoint``, ``/tile/…``) so any static tlog client can mirror and verify the
log, and a JSON API under ``/api/v1`` (checkpoints with cosignatures, entries, proofs). Appends
never come over HTTP: with ``sequencer=True`` the service owns the log's sequencer socket, through
which the platform's own services on this host append.
"""
