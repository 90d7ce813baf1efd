"""The read snapshot: what every reader reads, so that no reader ever holds the writers' file.

Only one process can open a DuckDB file read-write, and while it does no other can open it at
all; a read-only client (the DuckDB CLI, jupysql, pandas, a notebook) holding ``ledger.duckdb``
would make every ingest wait. So readers never open it. At the end of every ingest, still under
the ingest lock, the rows the ingest added are exported as Parquet files under ``<home>/read/``
(one file per table per ingest, named by the ``seq`` range it covers), and a small DuckDB file,
``<home>/read.duckdb``, holds the documented views over them (``event_log``, ``events``,
``models``, ``lineage_upstream``, ...). Any number of clients can hold it open read-only for as
long as they like: nothing nbgov does waits on it, and each of their queries sees every event
ingested so far (the views list the Parquet files afresh on every query).

Layout::

    read.duckdb                           the catalog for clients (rebuilt, by rename, only when
                                          the view definitions change)
    read/nbgov.duckdb                     the same catalog, nbgov's own (no client can hold it)
    read/<table>/<first>-<last>-<level>-<created>.parquet
                                          the rows of events first..last (seq), 20-digit numbers;
                                          created: when it was written (epoch seconds)
    read/<small table>/all.parquet        the small tables, whole (ledger_meta, schema history)

Files are written under a temporary name and renamed into place, derived tables before
``event_log`` (a reader that sees an event also sees its version number and Merkle nodes), so a
reader never sees half a file or a duplicate.

Merging. When 8 files of one level accumulate, one file of the next level is written to replace
them. A DuckDB query lists a table's files when it is bound and decides which are live when it
runs; a merged file that appeared between the two would hide the files it replaces without being
read itself. So a merged file is only *in effect* :data:`SETTLE` seconds after it was written
(the time is in its name): the views read the files in effect that no file in effect covers, and
a replaced file is deleted :data:`GRACE` seconds after its replacement took effect, so a query
that listed it a moment before still finds it. (A query that spends more than a minute between
binding and running, or more than ten minutes reading, could miss rows or fail: none of the
documented views comes close.)
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from nbgov._version import __version__
from nbgov.ledger.connection import DUCKDB_CONFIG
from nbgov.ledger.schema.views import view_statements, views_digest

__all__ = ["CATALOG", "GRACE", "Snapshot"]

#: The client catalog's file name, beside ``ledger.duckdb``.
CATALOG = "read.duckdb"
#: Seconds a superseded Parquet file stays after its replacement appeared (queries in flight).
GRACE = 600.0
#: How many files of one level are merged into one file of the next.
FANOUT = 8
_FORMAT = "nbgov-read-1"
_NAME = re.compile(r"^(\d{20})-(\d{20})-(\d+)-(\d+)\.parquet$")
#: Seconds a merged file waits, after it was written, before the views read it instead of the
#: files it merges (see "Merging" in the module docstring). Much less than :data:`GRACE`.
SETTLE = 60

#: Tables exported by the range of events their rows belong to: (name, rows of events $a..$b,
#: order). A Merkle node belongs to the event that completed it (its last leaf).
_RANGED = (
    ("model_version_numbers", "seq BETWEEN $a AND $b", "seq"),
    ("merkle_nodes", "(idx + 1) * (1::BIGINT << level) BETWEEN $a AND $b", "level, idx"),
    ("spool_progress",
     "batch IN (SELECT batch FROM ingest_batches WHERE last_seq BETWEEN $a AND $b)", "batch, segment"),
    ("ingest_batches", "last_seq BETWEEN $a AND $b", "batch"),
    ("event_log", "seq BETWEEN $a AND $b", "seq"),  # last: what readers see events by
)
#: Small tables, exported whole on every publish.
_WHOLE = ("ledger_meta", "schema_migrations", "schema_views")


@dataclass(frozen=True)
class _File:
    path: Path
    first: int
    last: int
    level: int
    created: int  # seconds since the epoch, in the name: the views need it without a stat


class Snapshot:
    """The read snapshot of the ledger whose home is *home* (see the module docstring)."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self.dir = self.home / "read"
        self.public = self.home / CATALOG
        self.private = self.dir / "nbgov.duckdb"
        self._digest_file = self.dir / "catalog.sha256"
        self._source_file = self.dir / "source.stat"
        self._location_file = self.dir / "location"

    # -- reading --------------------------------------------------------------------------------

    def ready(self) -> bool:
        """True once a catalog has been published here (a ledger home copied or moved elsewhere
        has catalogs whose views name the old place: not ready until the next ingest)."""
        try:
            return self.private.is_file() and self._location_file.read_text() == str(self.dir.resolve())
        except OSError:
            return False

    def note_source(self, source: Path) -> None:
        """Remember the ledger file's state right after a publish (its write connection closed)."""
        try:
            temporary = self._source_file.with_suffix(".tmp")
            temporary.write_text(_identity(source))
            os.replace(temporary, self._source_file)
        except OSError:
            self._source_file.unlink(missing_ok=True)

    def current(self, source: Path) -> bool:
        """True when the snapshot was published from *source* as it is now (no process wrote the
        ledger file since), without opening it."""
        try:
            return self.ready() and self._source_file.read_text() == _identity(source)
        except OSError:
            return False

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection to nbgov's own catalog that can read the snapshot's files and
        nothing else on the disk (``enable_external_access`` off, locked)."""
        con = duckdb.connect(str(self.private), read_only=True, config=DUCKDB_CONFIG)
        try:
            con.execute("SET TimeZone = 'UTC'")
            restrict(con, self.dir)
            yield con
        finally:
            con.close()

    # -- publishing (under the ingest lock, with the ledger's write connection) -----------------

    def publish(self, con: duckdb.DuckDBPyConnection) -> None:
        """Export what the ledger holds beyond the snapshot, merge small files, rebuild the
        catalogs if their definitions changed, and delete files superseded long enough ago."""
        self.dir.mkdir(mode=0o700, exist_ok=True)
        row = con.execute("SELECT coalesce(max(seq), 0) FROM event_log").fetchone()
        head = int(row[0]) if row else 0
        done = self._watermark()
        self._drop_orphans(done)
        if head > done:
            for table, where, order in _RANGED:
                self._export(con, table, f"SELECT * FROM {table} WHERE {where} ORDER BY {order}",
                             done + 1, head)
        for table in _WHOLE:
            self._export_whole(con, table)
        for table, _, order in _RANGED:
            self._compact(con, table, order)
        digest = self._catalog_digest(con)
        if not (self.ready() and self.public.is_file()) or self._recorded_digest() != digest:
            self._build_catalogs(con, digest)
        self._expire()

    def _watermark(self) -> int:
        """The last event the snapshot holds (its ``event_log`` files say)."""
        return max((f.last for f in self._files("event_log")), default=0)

    def _files(self, table: str) -> list[_File]:
        folder = self.dir / table
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            match = _NAME.match(name)
            if match and int(match[1]) > 0:  # 0: the empty file that gives the view its columns
                found.append(_File(folder / name, int(match[1]), int(match[2]), int(match[3]), int(match[4])))
        return found

    def _live(self, table: str) -> list[_File]:
        files = self._files(table)
        return sorted((f for f in files if not any(
            g.level > f.level and g.first <= f.first and g.last >= f.last for g in files)),
            key=lambda f: (f.first, f.level))

    def _drop_orphans(self, done: int) -> None:
        # A publish interrupted after some derived tables were written but before event_log: those
        # files cover events the snapshot does not hold yet, and will be written again.
        for table, _, _ in _RANGED:
            for file in self._files(table):
                if file.last > done and file.level == 0:
                    file.path.unlink(missing_ok=True)

    def _export(self, con: duckdb.DuckDBPyConnection, table: str, query: str, first: int,
                last: int, level: int = 0, *, keep_empty: bool = False, created: int | None = None) -> None:
        folder = self.dir / table
        folder.mkdir(mode=0o700, exist_ok=True)
        stamp = int(time.time()) if created is None else created
        target = folder / f"{first:020d}-{last:020d}-{level}-{stamp}.parquet"
        temporary = folder / f".{target.name}.{os.getpid()}.tmp"
        written = con.execute(f"COPY ({query}) TO '{_quote(str(temporary))}' (FORMAT parquet)",
                              {"a": first, "b": last} if "$a" in query else None).fetchone()
        if written is not None and written[0] == 0 and not keep_empty and table != "event_log":
            temporary.unlink(missing_ok=True)  # nothing of this table in the range
            return
        os.chmod(temporary, 0o600)
        os.replace(temporary, target)

    def _export_whole(self, con: duckdb.DuckDBPyConnection, table: str) -> None:
        folder = self.dir / table
        folder.mkdir(mode=0o700, exist_ok=True)
        temporary = folder / f".all.parquet.{os.getpid()}.tmp"
        con.execute(f"COPY (SELECT * FROM {table}) TO '{_quote(str(temporary))}' (FORMAT parquet)")
        os.chmod(temporary, 0o600)
        os.replace(temporary, folder / "all.parquet")

    def _compact(self, con: duckdb.DuckDBPyConnection, table: str, order: str) -> None:
        while True:
            live = self._live(table)
            for level in sorted({f.level for f in live}):
                group = [f for f in live if f.level == level]
                if len(group) >= FANOUT:
                    files = ", ".join(f"'{_quote(str(f.path))}'" for f in group)
                    merged = f"SELECT * FROM read_parquet([{files}], union_by_name = true) ORDER BY {order}"
                    self._export(con, table, merged, group[0].first, group[-1].last, level + 1,
                                 keep_empty=True)
                    break
            else:
                return

    def _expire(self) -> None:
        now = time.time()
        for table, _, _ in _RANGED:
            files = self._files(table)
            for file in files:
                covering = [g for g in files if g.level > file.level and g.first <= file.first
                            and g.last >= file.last]
                if covering and all(now - g.created > SETTLE + GRACE for g in covering):
                    file.path.unlink(missing_ok=True)

    # -- the catalogs ---------------------------------------------------------------------------

    def _recorded_digest(self) -> str | None:
        try:
            return self._digest_file.read_text().strip()
        except OSError:
            return None

    def _catalog_digest(self, con: duckdb.DuckDBPyConnection) -> str:
        columns = con.execute(
            "SELECT table_name, list(column_name || ' ' || data_type ORDER BY ordinal_position) "
            "FROM information_schema.columns WHERE table_schema = 'main' AND table_name IN "
            f"({', '.join(repr(t) for t in (*(t for t, _, _ in _RANGED), *_WHOLE))}) "
            "GROUP BY table_name ORDER BY table_name").fetchall()
        text = f"{_FORMAT}\n{__version__}\n{self.dir.resolve()}\n{views_digest()}\n{columns!r}"
        return hashlib.sha256(text.encode()).hexdigest()

    def _build_catalogs(self, con: duckdb.DuckDBPyConnection, digest: str) -> None:
        """Write the catalog: the documented views, created over empty tables of the ledger's
        columns (binding is cheap there), then those tables replaced by views of the same names
        over the snapshot's files (views are bound again at every query)."""
        import shutil

        tables = [t for t, _, _ in _RANGED] + list(_WHOLE)
        columns = dict(con.execute(
            "SELECT table_name, list('\"' || column_name || '\" ' || data_type ORDER BY ordinal_position) "
            "FROM information_schema.columns WHERE table_schema = 'main' GROUP BY table_name").fetchall())
        base = self._base_views(con)
        temporary = self.private.with_name(f".{self.private.name}.{os.getpid()}.tmp")
        temporary.unlink(missing_ok=True)
        catalog = duckdb.connect(str(temporary), config=DUCKDB_CONFIG)
        try:
            for table in tables:
                catalog.execute(f"CREATE TABLE {table} ({', '.join(columns[table])})")
            for statement in view_statements():
                catalog.execute(statement)
            for table in tables:
                catalog.execute(f"DROP TABLE {table}")
            for statement in base:
                catalog.execute(statement)
            catalog.execute(f"CREATE VIEW nbgov_snapshot AS SELECT '{digest}' AS digest, "
                            f"'{_quote(str(self.dir.resolve()))}' AS data_dir")
        finally:
            catalog.close()
        os.chmod(temporary, 0o600)
        public = self.public.with_name(f".{self.public.name}.{os.getpid()}.tmp")
        shutil.copyfile(temporary, public)
        os.chmod(public, 0o600)
        os.replace(temporary, self.private)
        os.replace(public, self.public)
        temporary_digest = self._digest_file.with_suffix(".tmp")
        temporary_digest.write_text(digest + "\n")
        os.replace(temporary_digest, self._digest_file)
        temporary_location = self._location_file.with_suffix(".tmp")
        temporary_location.write_text(str(self.dir.resolve()))
        os.replace(temporary_location, self._location_file)

    def _base_views(self, con: duckdb.DuckDBPyConnection) -> list[str]:
        """The ledger's tables as views over the snapshot's files (an empty file per table gives
        each its columns before it has rows); a view reads a table's live files only."""
        data = self.dir.resolve()
        views = [f"""CREATE VIEW nbgov_snapshot_files AS
            SELECT parse_filename(parse_dirpath(file), true) AS tbl, file,
                   TRY_CAST(split_part(parse_filename(file, true), '-', 1) AS BIGINT) AS first,
                   TRY_CAST(split_part(parse_filename(file, true), '-', 2) AS BIGINT) AS last,
                   TRY_CAST(split_part(parse_filename(file, true), '-', 3) AS INTEGER) AS level,
                   TRY_CAST(split_part(parse_filename(file, true), '-', 4) AS BIGINT) AS created
            FROM glob('{_quote(str(data))}/*/*.parquet')"""]
        # A file is read once it is in effect (every first-level file; a merged file SETTLE
        # seconds after it was written) and no file in effect covers it.
        views.append(f"""CREATE VIEW nbgov_snapshot_live AS
            WITH effective AS (
              SELECT * FROM nbgov_snapshot_files
              WHERE level = 0 OR created <= epoch(current_timestamp) - {SETTLE})
            SELECT f.tbl, f.file FROM effective f
            WHERE NOT EXISTS (
              SELECT 1 FROM effective g
              WHERE g.tbl = f.tbl AND g.level > f.level AND g.first <= f.first AND g.last >= f.last)""")
        for table, _, _ in _RANGED:
            self._export(con, table, f"SELECT * FROM {table} LIMIT 0", 0, 0, keep_empty=True, created=0)
            pattern = _quote(f"{data}/{table}/*.parquet")
            views.append(
                f"CREATE VIEW {table} AS SELECT * EXCLUDE (filename) FROM read_parquet('{pattern}', "
                f"filename = true, union_by_name = true) WHERE filename IN "
                f"(SELECT file FROM nbgov_snapshot_live WHERE tbl = '{table}')")
        for table in _WHOLE:
            views.append(f"CREATE VIEW {table} AS SELECT * FROM read_parquet("
                         f"'{_quote(f'{data}/{table}/all.parquet')}')")
        return views


def restrict(con: duckdb.DuckDBPyConnection, folder: Path) -> None:
    """Let *con* read files under *folder* only: no other file, glob or extension. DuckDB refuses
    to turn external access back on, or to widen the directories, once it is off, so the setting
    holds for every connection to this database in the process without locking the whole
    configuration (which would also lock the session's own ``TimeZone``: the second connection
    a process opens, the panel's beside a query's, could not set it)."""
    if not _external_access(con):
        return  # already restricted, by an earlier connection of this process
    try:
        con.execute("SET allowed_directories = $dirs", {"dirs": [f"{folder.resolve()}/"]})
        con.execute("SET enable_external_access = false")
    except duckdb.InvalidInputException:
        if _external_access(con):
            raise
        # another thread of this process restricted the same database a moment before: done


def _external_access(con: duckdb.DuckDBPyConnection) -> bool:
    row = con.execute("SELECT current_setting('enable_external_access')").fetchone()
    return row is None or bool(row[0])


def _identity(path: Path) -> str:
    """The ledger file's inode, size and modification time (and its write-ahead log's)."""
    parts = []
    for candidate in (path, path.with_name(path.name + ".wal")):
        try:
            info = candidate.stat()
        except FileNotFoundError:
            parts.append("-")
            continue
        parts.append(f"{info.st_ino}:{info.st_size}:{info.st_mtime_ns}")
    return " ".join(parts)


def _quote(text: str) -> str:
    return text.replace("'", "''")
