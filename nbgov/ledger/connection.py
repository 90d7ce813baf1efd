"""What every DuckDB connection of the ledger shares: its configuration and transactions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

__all__ = ["DUCKDB_CONFIG", "transaction"]

#: Extensions are never fetched or loaded behind the user's back (the machine may be offline).
DUCKDB_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Run the block in one transaction on *con*: committed at its end, rolled back if it raises.

    DuckDB can answer the COMMIT of a transaction that already failed without an error while
    rolling it back: a caller that must know its writes persisted reads them back.
    """
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            pass  # the transaction is gone either way; the block's error is the one to report
        raise
