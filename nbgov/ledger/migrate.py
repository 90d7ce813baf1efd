"""Moving an embedded ledger into a team ledger (``nbgov migrate --to URL``), hashes and all."""

from __future__ import annotations

from nbgov.errors import LedgerError, NbgovError
from nbgov.events import LedgerMigrated
from nbgov.ledger.connection import transaction
from nbgov.ledger.ducklake import DuckLakeStore
from nbgov.ledger.facade import Ledger
from nbgov.ledger.schema.migrations import ledger_id, upgrade
from nbgov.settings import parse_ledger_url, resolve_settings

__all__ = ["migrate_to_team"]


#: The tables a migration copies, row for row (the views are recreated by the schema migrations).
_COPIED = ("event_log", "ingest_batches", "spool_progress", "merkle_nodes")


def migrate_to_team(source: Ledger, url: str) -> tuple[int, str]:
    """Copy the embedded ledger *source* (a :class:`~nbgov.ledger.facade.Ledger`) into the empty team
    ledger at *url*, keeping every event's ``seq``, ingest time, leaf and chain hash, the batch
    log, the spool cursors, the Merkle tree and the ledger's id (so its checkpoints still verify);
    then record ``ledger_migrated`` there. Returns (events copied, head chain hash).

    Raises
    ------
    NbgovError
        The team ledger already holds events, or either ledger cannot be reached.
    """
    location = parse_ledger_url(url)
    target = DuckLakeStore(location, extension_dir=source.settings.home / "duckdb_extensions",
                           lock_timeout=source.settings.lock_timeout)
    source.ingest()  # nothing of this host's spool is left behind
    with source.reader(ingest=False) as con:
        tables = {name: con.execute(f"SELECT * FROM {name}").to_arrow_table() for name in _COPIED}
        identity = ledger_id(con) or ""
    events = tables["event_log"].num_rows
    if not events:
        raise NbgovError("the ledger to migrate holds no events")
    head = tables["event_log"].sort_by("seq").column("chain_hash")[-1].as_py().hex()
    with target.ingest_lock(), target.write() as con:
        upgrade(con)
        held = con.execute("SELECT count(*) FROM event_log").fetchone()
        if held and held[0]:
            raise NbgovError(f"the team ledger already holds {held[0]} events",
                             hint="migrate into a new, empty team ledger (a new database or data path)")
        with transaction(con):
            # The copy keeps the source's identity: its checkpoints' origin is nbgov/<ledger id>.
            con.execute("DELETE FROM ledger_meta WHERE key = 'ledger_id'")
            con.execute("INSERT INTO ledger_meta VALUES ('ledger_id', $id)", {"id": identity})
            for name, table in tables.items():
                con.register("nbgov_copy", table)
                try:
                    con.execute(f"INSERT INTO {name} SELECT * FROM nbgov_copy")
                finally:
                    con.unregister("nbgov_copy")
        copied = con.execute("SELECT count(*), max(seq) FROM event_log").fetchone()
        if copied is None or copied[0] != events:
            raise LedgerError(f"the copy holds {copied[0] if copied else 0} of {events} events")
    team = Ledger(settings=resolve_settings({"home": source.settings.home, "ledger": location.url}),
                  actor=source.actor)
    team.append(LedgerMigrated(source=str(source.settings.ledger_path), target=target.description,
                               events=events, head_chain=head))
    team.ingest()
    return events, head
