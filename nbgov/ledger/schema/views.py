"""The documented SQL views: the ledger's product surface, kept apart from its history.

The views and lineage macros are defined in ``views/*.sql`` (one file per domain, applied in the
order of :data:`VIEW_FILES`), never in a numbered migration. They are (re)applied, all together
and in one transaction, whenever their text changes (its SHA-256, recorded in ``schema_views``,
differs from the latest applied) and after any migration, so a ledger always carries the views
of the nbgov that last wrote it. Views hold no data: replacing them rewrites no history.
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from importlib import resources

import duckdb

from nbgov._version import __version__
from nbgov.errors import LedgerError
from nbgov.ledger.connection import transaction

__all__ = ["VIEW_FILES", "apply_views", "applied_digest", "view_statements", "views_digest"]

#: The files, in the order they are applied (later views read earlier ones).
VIEW_FILES = ("ledger.sql", "capture.sql", "lineage.sql", "governance.sql", "reviews.sql")

_NAME = re.compile(r"CREATE OR REPLACE (?:VIEW|MACRO) (\w+)")


@cache
def _texts() -> tuple[str, ...]:
    folder = resources.files("nbgov.ledger.schema").joinpath("views")
    return tuple(folder.joinpath(name).read_text(encoding="utf-8") for name in VIEW_FILES)


@cache
def view_statements() -> tuple[str, ...]:
    """Every ``CREATE OR REPLACE VIEW``/``MACRO`` statement, in application order."""
    statements = []
    for text in _texts():
        for part in text.split(";\n"):
            body = "\n".join(line for line in part.splitlines() if not line.lstrip().startswith("--"))
            if body.strip():
                statements.append(body.strip())
    return tuple(statements)


def view_names() -> list[str]:
    """The names of the documented views and macros, in application order."""
    return [match[1] for statement in view_statements() if (match := _NAME.search(statement))]


@cache
def views_digest() -> str:
    """SHA-256 of the view files' text, as applied."""
    digest = hashlib.sha256()
    for name, text in zip(VIEW_FILES, _texts()):
        digest.update(f"{name}\n{len(text)}\n".encode())
        digest.update(text.encode())
    return digest.hexdigest()


def applied_digest(con: duckdb.DuckDBPyConnection) -> str | None:
    """The digest of the views the ledger carries (None before any were applied)."""
    row = con.execute("SELECT digest FROM schema_views ORDER BY n DESC LIMIT 1").fetchone()
    return str(row[0]) if row else None


def apply_views(con: duckdb.DuckDBPyConnection, *, force: bool = False) -> bool:
    """(Re)create every view when their text changed (or *force*); True if they were applied.

    Runs in one transaction with the ``schema_views`` row that records the digest.
    """
    digest = views_digest()
    if not force and applied_digest(con) == digest:
        return False
    with transaction(con):
        for statement in view_statements():
            con.execute(statement)
        con.execute(
            "INSERT INTO schema_views SELECT coalesce(max(n), 0) + 1, $digest, now(), $version "
            "FROM schema_views", {"digest": digest, "version": __version__})
    if applied_digest(con) != digest:  # a failed COMMIT can look like success: read it back
        raise LedgerError("the ledger's views were not applied; the ledger is unchanged")
    return True
