"""The team backend: one shared ledger in a DuckLake catalog on PostgreSQL.

The ledger URL (setting ``ledger``, ``NBGOV_LEDGER``) selects it::

    ducklake:postgres:dbname=nbgov host=db.example.org;data=/shared/nbgov/

Everything before the ``;`` is a libpq connection string (keywords only; credentials come from
the environment, ``PGPASSWORD``/``PGUSER``, a ``~/.pgpass`` file or a libpq service file, never
from the URL, which is refused if it holds a password); ``data=`` is the directory all hosts share
for the catalog's Parquet files.

Each host keeps appending to its own local spool (``home``); ingest moves its lines into the
shared catalog in DuckLake transactions. Ingesters on all hosts take turns through a PostgreSQL
advisory lock held for the whole ingest, so ``seq``, the hash chain, the Merkle tree and the
checkpoints stay gapless and consistent; a commit conflict DuckLake reports anyway is retried.
When PostgreSQL is unreachable, capture goes on into the spool and ingest fails with
:class:`LedgerUnavailable`, to be retried later: nothing is lost.

DuckDB's ``ducklake`` and ``postgres`` extensions come from PyPI wheels pinned to the DuckDB
version (``pip install 'nbgov[team]'``); they are installed from those files into a private
extension directory and loaded from there. DuckDB never downloads anything
(``autoinstall_known_extensions`` and ``autoload_known_extensions`` are off, unsigned extensions
refused).
"""

from __future__ import annotations

import importlib
import random
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb

from nbgov.errors import (
    LedgerAccessError,
    LedgerError,
    LedgerLocked,
    LedgerUnavailable,
    TeamBackendMissing,
)
from nbgov.ledger.connection import DUCKDB_CONFIG
from nbgov.settings import _KEYWORD, _SECRET_KEYS, URL_PREFIX, LakeLocation, parse_ledger_url

__all__ = ["LAKE", "URL_PREFIX", "DuckLakeStore", "LakeLocation", "TeamBackendMissing",
           "parse_ledger_url"]

#: The name the catalog is attached under in every connection (the ledger's tables live there).
LAKE = "nbgov_lake"
_EXTENSIONS = (("postgres_scanner", "duckdb_extension_postgres_scanner"),
               ("ducklake", "duckdb_extension_ducklake"))


def extension_files() -> dict[str, Path]:
    """The extension files shipped by the ``team`` extra's wheels."""
    import duckdb as _duckdb

    version = f"v{_duckdb.__version__}"
    files: dict[str, Path] = {}
    for name, module in _EXTENSIONS:
        try:
            package = importlib.import_module(module)
        except ImportError:
            raise TeamBackendMissing(
                f"the team backend needs DuckDB's {name} extension ({module.replace('_', '-')} "
                f"for DuckDB {_duckdb.__version__}), which is not installed") from None
        path = Path(str(resources.files(package) / "extensions" / version / f"{name}.duckdb_extension"))
        if not path.is_file():
            raise TeamBackendMissing(f"{module} does not ship the extension for DuckDB {_duckdb.__version__}")
        files[name] = path
    return files


def _unavailable(exc: Exception, location: LakeLocation) -> LedgerError:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    lowered = text.lower()
    if any(word in lowered for word in ("connection refused", "could not connect", "connection to server",
                                        "timeout expired", "server closed the connection",
                                        "no such file or directory", "could not translate host")):
        return LedgerUnavailable(f"the team ledger ({_public(location.conninfo)}) is unreachable: {text}")
    if "permission denied" in lowered:
        return LedgerAccessError(f"the team ledger refused access: {text}")
    return LedgerError(f"team ledger ({_public(location.conninfo)}): {text}")


def _public(conninfo: str) -> str:
    return " ".join(f"{k}={v}" for k, v in _KEYWORD.findall(conninfo) if k.lower() not in _SECRET_KEYS)


class DuckLakeStore:
    """The ledger's tables in a DuckLake catalog on PostgreSQL (see the module docstring).

    Parameters
    ----------
    location
        The catalog and its data path.
    extension_dir
        The private directory the extensions are installed into.
    lock_timeout
        Seconds to wait for another host's ingest before :class:`~nbgov.errors.LedgerLocked`.
    """

    def __init__(self, location: LakeLocation, *, extension_dir: Path, lock_timeout: float = 30.0) -> None:
        self.location = location
        self.extension_dir = Path(extension_dir)
        self.lock_timeout = lock_timeout
        self.description = f"{URL_PREFIX}{_public(location.conninfo)};data={location.data_path}"
        self._files = extension_files()
        self._base: duckdb.DuckDBPyConnection | None = None
        self._guard = threading.RLock()

    # -- connections ----------------------------------------------------------------------------
    #
    # Loading the two extensions and attaching the catalog costs a few hundred milliseconds, so a
    # process does it once: an in-memory DuckDB with the catalog attached, handing out a cursor
    # (a connection of its own) per unit of work. After any error the base is dropped and the next
    # unit of work attaches afresh (PostgreSQL may have restarted meanwhile).

    def _base_connection(self) -> duckdb.DuckDBPyConnection:
        with self._guard:
            if self._base is not None:
                return self._base
            self.extension_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            config: dict[str, Any] = {**DUCKDB_CONFIG, "extension_directory": str(self.extension_dir),
                                      "allow_unsigned_extensions": False}
            con = duckdb.connect(":memory:", config=config)
            try:
                for name, path in self._files.items():
                    try:
                        con.execute(f"LOAD {name}")
                    except duckdb.Error:
                        con.execute(f"INSTALL '{path}'")  # from the wheel's file into the private directory
                        con.execute(f"LOAD {name}")
                con.execute(f"ATTACH 'ducklake:postgres:{_quote(self.location.conninfo)}' AS {LAKE} "
                            f"(DATA_PATH '{self.location.data_path}', METADATA_SCHEMA 'nbgov_lake')")
            except duckdb.Error as exc:
                con.close()
                raise _unavailable(exc, self.location) from None
            self._base = con
            return con

    def _drop_base(self) -> None:
        with self._guard:
            if self._base is not None:
                try:
                    self._base.close()
                except duckdb.Error:
                    pass
                self._base = None

    @contextmanager
    def _unit(self) -> Iterator[duckdb.DuckDBPyConnection]:
        try:
            cursor = self._base_connection().cursor()
            cursor.execute(f"USE {LAKE}")
            cursor.execute("SET TimeZone = 'UTC'")
        except duckdb.Error as exc:
            self._drop_base()
            raise _unavailable(exc, self.location) from None
        try:
            yield cursor
        except duckdb.Error as exc:
            self._drop_base()
            raise _unavailable(exc, self.location) from None
        except BaseException:
            self._drop_base()
            raise
        finally:
            try:
                cursor.close()
            except duckdb.Error:
                pass

    def close(self) -> None:
        self._drop_base()

    def exists(self) -> bool:
        try:
            with self.read() as con:
                row = con.execute(
                    "SELECT count(*) FROM duckdb_tables() "
                    "WHERE database_name = $db AND table_name = 'event_log'",
                    {"db": LAKE}).fetchone()
        except LedgerUnavailable:
            raise
        except LedgerError:
            return False
        return bool(row and row[0])

    def write(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        return self._unit()

    def read(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        # Queries are read-only by nbgov's own check (nbgov.ledger.query) before they reach here.
        return self._unit()

    def read_source(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        return self.read()

    def after_ingest(self, con: duckdb.DuckDBPyConnection) -> None:
        pass  # the catalog serves concurrent readers itself

    # -- the ingest lock: a PostgreSQL advisory lock held by a session of its own ------------------

    @contextmanager
    def ingest_lock(self) -> Iterator[None]:
        try:
            import psycopg
        except ImportError:
            raise TeamBackendMissing("the team backend needs psycopg for its ingest lock") from None
        try:
            session = psycopg.connect(self.location.conninfo, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise _unavailable(exc, self.location) from None
        key = self.location.lock_key()
        try:
            deadline = time.monotonic() + self.lock_timeout
            delay = 0.01
            while True:
                row = session.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
                if row and row[0]:
                    break
                if time.monotonic() >= deadline:
                    holder = session.execute(
                        "SELECT a.client_addr::text || ' pid ' || a.pid FROM pg_locks l "
                        "JOIN pg_stat_activity a USING (pid) "
                        "WHERE l.locktype = 'advisory' AND l.granted LIMIT 1").fetchone()
                    raise LedgerLocked(self.description, holder[0] if holder and holder[0] else "",
                                       self.lock_timeout)
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 1.6, 0.25)
            try:
                yield
            finally:
                try:
                    session.execute("SELECT pg_advisory_unlock(%s)", (key,))
                except psycopg.Error:
                    pass  # the session ends below, which releases the lock anyway
        except psycopg.Error as exc:
            raise _unavailable(exc, self.location) from None
        finally:
            session.close()


def _quote(text: str) -> str:
    return text.replace("'", "''")


def retry_conflicts(action: Any, attempts: int = 5) -> Any:
    """Run *action*, retrying when DuckLake reports a commit conflict."""
    for attempt in range(attempts):
        try:
            return action()
        except (duckdb.TransactionException, LedgerError) as exc:
            if "conflict" not in str(exc).lower() or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1) * (0.5 + random.random()))
    return None
