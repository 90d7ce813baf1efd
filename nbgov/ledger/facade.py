"""The ledger: append events, ingest them, query, verify.

>>> from nbgov import Ledger, events
>>> with Ledger.in_memory() as ledger:
...     _ = ledger.append(events.SessionEnded(reason="example"))
...     ledger.query("SELECT type FROM events")["type"].tolist()
['session_ended']

A ledger lives in a directory (``home``, default ``./.nbgov``)::

    ledger.duckdb     the DuckDB database: append-only, hash-chained event log (0600)
    spool/            one append-only segment per writer process; spool/done/ once ingested
    ingest.lock       serialises ingesters

Writers only ever touch the spool; the DuckDB file is opened for one short transaction at a time.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any

from nbgov._version import __version__
from nbgov.errors import (
    LedgerAccessError,
    LedgerCorrupt,
    LedgerError,
    NbgovWarning,
    NotALedger,
    SchemaTooNew,
    UnknownEventType,
)
from nbgov.events import EVENT_TYPES, Event, LedgerCreated
from nbgov.identity import Actor, resolve_actor
from nbgov.ledger.envelope import Session
from nbgov.ledger.ingest import IngestReport, ingest_spool
from nbgov.ledger.integrity.verify import Head, Progress, VerifyReport, verify_ledger
from nbgov.ledger.query import QueryResult, check_read_only, run_statements
from nbgov.ledger.schema import migrations
from nbgov.ledger.spool import (
    SpoolWriter,
    list_segments,
    note_consumed,
    nothing_pending,
)
from nbgov.ledger.status import LedgerStatus, SegmentStatus, ledger_status
from nbgov.ledger.store import FileStore, MemoryStore, Store
from nbgov.settings import Settings, resolve_settings

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Ledger", "LedgerStatus", "SegmentStatus"]


class Ledger:
    """An nbgov ledger.

    Parameters
    ----------
    home
        The ledger directory. Default: resolved from ``NBGOV_HOME``, ``[tool.nbgov] home`` in the
        nearest ``pyproject.toml``, or ``./.nbgov``.
    settings
        Already-resolved settings (``home`` is then ignored).
    actor
        The identity to stamp on appended events (default: :func:`~nbgov.identity.resolve_actor`).

    Nothing touches the disk until the first call that needs it.
    """

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        *,
        settings: Settings | None = None,
        actor: Actor | None = None,
        _store: Store | None = None,
    ) -> None:
        self.settings = settings or resolve_settings({"home": home})
        self.home = self.settings.home
        self.actor = actor or resolve_actor()
        self._store: Store = _store or self._open_store()
        self._next_interval_check = 0.0
        self._warned_checkpoint_key = False
        self._writer = SpoolWriter(
            self.settings.spool_dir, self.actor, durability=self.settings.durability
        )
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None

    def _open_store(self) -> Store:
        if self.settings.ledger is None:
            return FileStore(self.settings.ledger_path, lock_timeout=self.settings.lock_timeout)
        from nbgov.ledger.ducklake import DuckLakeStore
        from nbgov.settings import parse_ledger_url

        return DuckLakeStore(parse_ledger_url(self.settings.ledger),
                             extension_dir=self.settings.home / "duckdb_extensions",
                             lock_timeout=self.settings.lock_timeout)

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def in_memory(cls, *, actor: Actor | None = None) -> Ledger:
        """A ledger in an in-memory database (its spool sits in a temporary directory)."""
        tempdir = tempfile.TemporaryDirectory(prefix="nbgov-")
        settings = resolve_settings({"home": tempdir.name})
        ledger = cls(settings=settings, actor=actor, _store=MemoryStore())
        ledger._tempdir = tempdir
        return ledger

    @classmethod
    def init(cls, home: str | os.PathLike[str] | None = None, **settings: Any) -> Ledger:
        """Create a ledger (directory 0700, database 0600) or open an existing one.

        A new ledger records a ``ledger_created`` event as its first event.
        """
        ledger = cls(settings=resolve_settings({"home": home, **settings}))
        ledger.ensure_home()
        with ledger._store.ingest_lock():
            # Decided under the ingest lock, so two concurrent inits record one ledger_created: on
            # one host through the shared spool, across hosts (a team ledger, a spool per host)
            # through the claim each writes in the ledger before appending to its own spool.
            pending = bool(list_segments(ledger.settings.spool_dir))
            with ledger._store.write() as con:
                migrations.upgrade(con)
                fresh = not pending and migrations.claim_creation(con, ledger.actor.id)
                ledger_id = migrations.ledger_id(con) or ""
            if fresh:
                ledger.append(LedgerCreated(ledger_id=ledger_id, nbgov_version=__version__))
        ledger.ingest()
        return ledger

    # -- writing --------------------------------------------------------------------------------

    def append(self, event: Event, *, session: Session | None = None) -> str:
        """Append *event* to this process's spool segment; return its event id.

        Costs microseconds and never opens the database. The event reaches the ledger at the next
        :meth:`ingest` (which every query runs first).
        """
        cls = type(event)
        if EVENT_TYPES.get(getattr(cls, "TYPE", None)) is not cls:  # type: ignore[arg-type]
            raise UnknownEventType(getattr(cls, "TYPE", cls.__name__), list(EVENT_TYPES))
        if self._writer.segment is None:
            self.ensure_home()
        return self._writer.append(event, session=session)

    def append_encoded(self, event_type: type[Event], payload: bytes, session: bytes | None) -> str:
        """Append an event of a registered type whose payload the caller encoded canonically.

        The hot path of cell capture; :meth:`append` is the checked way in.
        """
        if EVENT_TYPES.get(event_type.TYPE) is not event_type:
            raise UnknownEventType(event_type.TYPE, list(EVENT_TYPES))
        if self._writer.segment is None:
            self.ensure_home()
        return self._writer.append_encoded(event_type.TYPE, event_type.VERSION, payload, session)

    def sync(self) -> None:
        """fsync this process's spool segment (at batch, session and run boundaries)."""
        self._writer.sync()

    def ingest(
        self,
        *,
        max_batches: int | None = None,
        progress: Progress | None = None,
        checkpoint: str | None = None,
        wait: bool = True,
    ) -> IngestReport:
        """Move every complete spool line into the database; see :mod:`nbgov.ledger.ingest`.

        *progress* is called after each batch with (spool bytes done, spool bytes pending).
        *checkpoint* (a reason: ``session_end``, ``review_run``, ``manual``) cuts a signed
        checkpoint of the result when anything was recorded since the last one; without it, one
        is cut only when ``checkpoint_interval`` has passed (see :mod:`nbgov.ledger.integrity.checkpoints`).
        With *wait* False, raise :class:`LedgerLocked` at once instead of waiting when another
        ingest or process holds the ledger (a session end does not wait for anyone).
        """
        self._require_ledger()
        self._writer.sync()
        if not wait:
            store: Any = self._store
            saved = getattr(store, "lock_timeout", None)
            if saved is not None:
                store.lock_timeout = 0.0
                try:
                    return self.ingest(max_batches=max_batches, progress=progress,
                                       checkpoint=checkpoint)
                finally:
                    store.lock_timeout = saved

        def run() -> IngestReport:
            return ingest_spool(
                self._store,
                self.settings.spool_dir,
                actor=self.actor,
                batch_events=self.settings.ingest_batch_events,
                max_batches=max_batches,
                progress=progress,
                after=lambda con: self._cut_checkpoint(con, checkpoint),
            )

        if self.settings.ledger is None:
            report = run()
        else:
            from nbgov.ledger.ducklake import retry_conflicts

            # A team catalog: a DuckLake commit conflict rolled the batch back whole (the spool
            # still holds it), so the ingest is simply run again.
            report = retry_conflicts(run)
        note_consumed(self.settings.spool_dir, report.consumed)
        return report

    def decide(self, event: Event) -> str:
        """Append a governance decision (an approval, a rejection, a role or key change, a state
        change) and cut a signed checkpoint that covers it at once, so that removing it later from
        the ledger cannot go unnoticed against the checkpoint. If the ledger is busy, the decision
        stays in the spool and the next ingest certifies it."""
        event_id = self.append(event)
        try:
            self.ingest(checkpoint="decision")
        except LedgerError as exc:
            warnings.warn(f"the decision is recorded in the spool; no checkpoint was cut now "
                          f"({exc.message})", NbgovWarning, stacklevel=3)
        return event_id

    def _cut_checkpoint(self, con: Any, reason: str | None) -> bool:
        """Under the ingest lock: append a signed checkpoint when asked or due (True if one was)."""
        import time

        from nbgov.ledger.integrity import checkpoints

        if reason is None:
            now = time.monotonic()
            if now < self._next_interval_check:
                return False
            self._next_interval_check = now + min(60.0, self.settings.checkpoint_interval)
            if not checkpoints.due(con, self.settings.checkpoint_interval):
                return False
            reason = "interval"
        key = self._checkpoint_key(required=reason == "manual")
        if key is None:
            return False
        made = checkpoints.checkpoint_events(con, migrations.ledger_id(con) or "", self.actor.id, key, reason)
        for event in made:
            self._writer.append(event)
        if made:
            self._writer.sync()
        return bool(made)

    def _checkpoint_key(self, *, required: bool) -> Any:
        from nbgov.errors import SigningKeyError
        from nbgov.ledger.integrity.signing import load_or_create_key

        try:
            return load_or_create_key(self.settings.key_dir, self.actor.id)
        except SigningKeyError as exc:
            if required:
                raise
            if not self._warned_checkpoint_key:
                self._warned_checkpoint_key = True
                warnings.warn(f"no signed checkpoint cut: {exc.message}", NbgovWarning, stacklevel=4)
            return None

    def checkpoint(self, reason: str = "manual") -> str | None:
        """Cut a signed checkpoint of every event the ledger holds (unless the latest checkpoint
        already certifies them all); return the latest checkpoint's note, or None for an empty
        ledger."""
        from nbgov.ledger.integrity.checkpoints import latest_checkpoint

        self.ingest(checkpoint=reason)
        with self.reader(ingest=False) as con:
            latest = latest_checkpoint(con)
        return None if latest is None else latest.note

    # -- reading --------------------------------------------------------------------------------

    def query_arrow(self, sql: str, params: Mapping[str, Any] | None = None) -> QueryResult:
        """Run read-only *sql* (after ingesting, so the caller sees its own writes)."""
        statements = check_read_only(sql)
        self._ingest_before_reading()
        with self._store.read() as con:
            return run_statements(con, statements, params)

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run read-only *sql*; its rows as dicts (NULL as None, timestamps as datetimes, lists as
        lists, JSON as text), for the core's readers that present rows rather than compute on
        frames."""
        rows: list[dict[str, Any]] = self.query_arrow(sql, params).table.to_pylist()
        return rows

    @contextmanager
    def reader(self, *, ingest: bool = True) -> Iterator[Any]:
        """A read-only DuckDB connection for the core's own SQL (after ingesting, by default).
        Hold it briefly: while it is open no other process can write the ledger."""
        if ingest:
            self._ingest_before_reading()
        else:
            self._require_ledger()
        with self._store.read() as con:
            yield con

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Run read-only *sql* and return a pandas DataFrame.

        Raises
        ------
        WriteRefused
            The SQL would modify the ledger.
        QueryError
            The SQL is invalid or failed.
        """
        return self.query_arrow(sql, params).table.to_pandas()

    def verify(self, *, against: Head | str | None = None, trusted: list[Any] | None = None,
               progress: Progress | None = None) -> VerifyReport:
        """Recompute every leaf, the chain, the Merkle tree and the checkpoints; see
        :mod:`nbgov.ledger.integrity.verify`.

        *against* is a signed checkpoint note exported earlier (``nbgov checkpoint export``) and
        *trusted* the verifier keys (:class:`nbgov.ledger.integrity.notes.VerifierKey`) that may have
        signed it (default: the keys registered in this ledger). *progress* is called as it goes with
        (events checked, events in the ledger).
        """
        self._ingest_before_reading()
        with self._store.read_source() as con:
            return verify_ledger(
                con, ledger_id=migrations.ledger_id(con) or "", against=against, trusted=trusted,
                progress=progress,
            )

    # -- the Merkle tree (RFC 9162) over the leaf hashes ---------------------------------------

    def merkle_root(self, size: int | None = None) -> tuple[int, bytes]:
        """(tree size, root) of the first *size* events (default: all, after ingesting)."""
        from nbgov.ledger.integrity.tree_store import LedgerTree

        self._ingest_before_reading()
        with self._store.read_source() as con:
            tree = LedgerTree(con)
            size = tree.size() if size is None else self._tree_size(tree, size)
            return size, tree.root(size)

    def inclusion_proof(self, seq: int, size: int | None = None) -> tuple[int, list[bytes]]:
        """(tree size, audit path) proving the event at *seq* is in the first *size* events."""
        from nbgov.ledger.integrity.tree_store import LedgerTree

        self._ingest_before_reading()
        with self._store.read_source() as con:
            tree = LedgerTree(con)
            size = tree.size() if size is None else self._tree_size(tree, size)
            if not 1 <= seq <= size:
                raise LedgerError(f"seq {seq} is not among the first {size} events")
            return size, tree.inclusion_proof(seq, size)

    def consistency_proof(self, size1: int, size2: int | None = None) -> tuple[int, list[bytes]]:
        """(size2, proof) that the first *size1* events are a prefix of the first *size2*."""
        from nbgov.ledger.integrity.tree_store import LedgerTree

        self._ingest_before_reading()
        with self._store.read_source() as con:
            tree = LedgerTree(con)
            size2 = tree.size() if size2 is None else self._tree_size(tree, size2)
            if not 1 <= size1 <= size2:
                raise LedgerError(f"no consistency proof from {size1} events to {size2}")
            return size2, tree.consistency_proof(size1, size2)

    @staticmethod
    def _tree_size(tree: Any, size: int) -> int:
        if not 0 <= size <= tree.size():
            raise LedgerError(f"the ledger holds {tree.size()} events, not {size}")
        return size

    def head(self) -> Head:
        """The current head (last seq and chain hash), for a checkpoint kept elsewhere."""
        self._ingest_before_reading()
        with self._store.read_source() as con:
            row = con.execute(
                "SELECT seq, chain_hash FROM event_log ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            ledger_id = migrations.ledger_id(con) or ""
        seq, chain = (int(row[0]), bytes(row[1]).hex()) if row else (0, bytes(32).hex())
        return Head(ledger_id, seq, chain)

    def status(self) -> LedgerStatus:
        """Counts, head, last ingest, open and lost sessions and the spool's pending lines (does
        not ingest)."""
        self._require_ledger()
        return ledger_status(self._store, self.settings.spool_dir, home=str(self.home))

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        """fsync and close this process's spool segment (and drop an in-memory ledger)."""
        self._writer.close()
        closer = getattr(self._store, "close", None)  # a memory or team store holds a connection
        if closer is not None:
            closer()
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({self._store.description!r})"

    # -- internals ------------------------------------------------------------------------------

    def _is_ledger_dir(self) -> bool:
        return self._store.exists() or self.settings.spool_dir.is_dir()

    def _require_ledger(self) -> None:
        if isinstance(self._store, MemoryStore) or self._is_ledger_dir():
            return
        if not self.home.exists():
            raise NotALedger(f"no ledger at {self.home} (the directory does not exist)")
        raise NotALedger(f"{self.home} is not an nbgov ledger (no ledger.duckdb or spool/)")

    def ensure_home(self) -> None:
        """Create the ledger directory (and its spool) private to the user.

        An existing empty directory is taken over; a non-empty one that is not a ledger is refused.
        """
        home = self.home
        if home.is_dir():
            if not self._is_ledger_dir() and any(home.iterdir()):
                raise NotALedger(
                    f"{home} already holds other files and is not an nbgov ledger",
                    hint="choose an empty or new directory with --home / NBGOV_HOME",
                )
        elif home.exists():
            raise NotALedger(f"{home} exists and is not a directory")
        try:
            for directory in (home, self.settings.spool_dir):
                directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise LedgerAccessError(f"cannot create ledger directory {home}: {exc.strerror}") from None

    def _ingest_before_reading(self) -> None:
        """Ingest so a reader sees its own writes. When the spool holds nothing new the ledger is
        not opened at all; when ingest cannot run (a read-only or full disk, a busy or unreachable
        ledger) the reader gets what the ledger already holds, with a one-line warning."""
        self._require_ledger()
        current = getattr(self._store, "snapshot_current", lambda: True)
        if nothing_pending(self.settings.spool_dir) and current():
            return
        try:
            self.ingest()
        except (SchemaTooNew, NotALedger, LedgerCorrupt):
            raise
        except LedgerError as exc:
            if not self._store.exists():
                raise
            warnings.warn(
                f"could not ingest pending spool lines ({exc.message}); results may miss them",
                NbgovWarning,
                stacklevel=3,
            )
