"""The ledger: spool, ingest, the DuckDB store, its schema and its integrity."""

from nbgov.ledger.facade import Ledger, LedgerStatus, SegmentStatus

__all__ = ["Ledger", "LedgerStatus", "SegmentStatus"]
