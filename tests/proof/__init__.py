"""Proof suites: reliability under faults, concurrency, security, with printed figures.

Small by default (CI); ``BVC_PROOF_SIZE=1000`` runs the full sizes. See ``docs/proof.md``.
"""
