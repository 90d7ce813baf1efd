"""A throwaway PostgreSQL server for the team-backend tests (``support.pg_server``: tests/ is on sys.path).

``PostgresServer.start(base_dir)`` runs ``initdb`` in ``base_dir/data`` (superuser ``nbgov``, UTF8,
trust authentication) and starts a server listening on 127.0.0.1 only, on a free port, with its unix
socket inside the server's own directory (never the system's /var/run/postgresql). PostgreSQL refuses
to run as root: under uid 0 the server runs as the ``postgres`` system user, and when that user cannot
reach ``base_dir`` (pytest's temporary root is private to its owner) the cluster lives in a directory
of its own under the system's temporary directory instead (``server.root``, named in
``base_dir/location``, removed by ``close()``). Every started server is stopped at interpreter exit,
even when a test fails.

Fixtures:

* ``postgres`` (session): one running server per test process (each xdist worker starts its own);
  skipped when no server can be started, unless ``NBGOV_TEAM_TESTS=required`` (CI), which fails.
* ``team_database`` (function): a fresh, uniquely named database on that server, dropped afterwards.

Register the module as a plugin in a test module, ``pytest_plugins = ["support.pg_server"]``, rather than
importing the fixtures: each module importing a session fixture would get a server of its own.
(PYTEST_DONT_REWRITE: test modules import this module before pytest registers it as a plugin.)
"""

from __future__ import annotations

import atexit
import os
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

SUPERUSER = "nbgov"
#: The system account the server runs as when the tests run as root.
SYSTEM_USER = "postgres"
SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")
MISSING_BINARIES = "no PostgreSQL server binaries found (Debian: apt-get install postgresql)"
#: Seconds to wait for the server to start, stop or accept connections: met in a second or two when
#: things work, generous so that a busy machine never reaches it.
STARTUP_TIMEOUT = 120.0
#: Longest unix socket directory: sun_path holds 107 bytes, the socket name is "/.s.PGSQL.<port>".
_MAX_SOCKET_DIR = 90
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_BIND_FAILURE = ("could not bind", "Address already in use", "could not create any TCP/IP sockets",
                 "lock file")

_live_servers: set[PostgresServer] = set()


class PostgresServerError(RuntimeError):
    """The server could not be initialised, started, stopped or queried."""


def _version(bin_dir: Path) -> tuple[int, ...]:
    try:
        out = subprocess.run([str(bin_dir / "pg_ctl"), "--version"], capture_output=True, text=True,
                             timeout=30, env=_server_env()).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    match = re.search(r"(\d+)(?:\.(\d+))?", out)
    return tuple(int(part) for part in match.groups() if part is not None) if match else ()


def _has_server_binaries(directory: Path) -> bool:
    return all(os.access(directory / name, os.X_OK) and (directory / name).is_file()
               for name in SERVER_BINARIES)


def find_postgres_bin() -> Path | None:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``, highest major version first.

    Looks in Debian's ``/usr/lib/postgresql/<major>/bin``, RPM's ``/usr/pgsql-<major>/bin`` and on
    PATH (a ``pg_ctl`` symlink is followed to the directory it points into)."""
    candidates: list[Path] = []
    for pattern_root, pattern in ((Path("/usr/lib/postgresql"), "*/bin"), (Path("/usr"), "pgsql-*/bin")):
        if pattern_root.is_dir():
            candidates.extend(sorted(pattern_root.glob(pattern)))
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
        candidates.append(Path(on_path).parent)
    found: list[Path] = []
    for directory in candidates:
        if directory not in found and _has_server_binaries(directory):
            found.append(directory)
    if not found:
        return None
    # max() keeps the first of equal versions: a Debian directory before the PATH symlinks into it.
    return max(found, key=_version)


def _server_env() -> dict[str, str]:
    # PG* settings of the surrounding shell (PGHOST, PGPORT, PGDATA, PGPASSWORD...) must not leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    env.pop("LANG", None)
    return env


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _conf_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _quote_identifier(name: str) -> str:
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"not a plain database name: {name!r}")
    return '"' + name + '"'


class PostgresServer:
    """One PostgreSQL cluster (data directory) and the server running on it."""

    def __init__(self, bin_dir: Path, base_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.base_dir = base_dir
        self.as_system_user = os.geteuid() == 0
        #: Where the cluster lives: base_dir, or (under root, when the postgres user cannot reach
        #: base_dir, e.g. below pytest's private temporary root) a directory of its own, removed by close().
        self.root = base_dir
        self._owned_root = False
        self.port = 0
        self._closed = False

    # --- paths -------------------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    # --- lifecycle -----------------------------------------------------------------------------

    @classmethod
    def start(cls, base_dir: Path, bin_dir: Path | None = None) -> PostgresServer:
        """Initialise a cluster under ``base_dir`` and start it on a free port of 127.0.0.1."""
        bin_dir = bin_dir or find_postgres_bin()
        if bin_dir is None:
            raise PostgresServerError(MISSING_BINARIES)
        server = cls(bin_dir, Path(base_dir))
        _live_servers.add(server)
        try:
            server._prepare_root()
            server._initdb()
            server._start_on_free_port()
        except BaseException:
            server.close()
            raise
        return server

    def _prepare_root(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if self.as_system_user:
            try:
                shutil.chown(self.base_dir, user=SYSTEM_USER)
            except LookupError as exc:
                raise PostgresServerError(
                    f"running as root and there is no {SYSTEM_USER!r} system user to run PostgreSQL as"
                ) from exc
        too_long = len(str(self.socket_dir)) > _MAX_SOCKET_DIR
        if too_long or (self.as_system_user and not self._reachable(self.base_dir)):
            self.root = self._private_root()
            self._owned_root = True
        self.socket_dir.mkdir(exist_ok=True)
        if self.as_system_user:
            shutil.chown(self.socket_dir, user=SYSTEM_USER)

    def _reachable(self, directory: Path) -> bool:
        probe = self._run([shutil.which("test") or "/usr/bin/test", "-w", str(directory), "-a",
                           "-x", str(directory)], check=False)
        return probe.returncode == 0

    def _private_root(self) -> Path:
        for parent in dict.fromkeys((tempfile.gettempdir(), "/tmp", "/var/tmp", "/dev/shm")):
            if not os.path.isdir(parent):
                continue
            root = Path(tempfile.mkdtemp(prefix="nbgov-pg-", dir=parent))
            if not self.as_system_user:
                return root
            shutil.chown(root, user=SYSTEM_USER)
            if self._reachable(root) and len(str(root / "sock")) <= _MAX_SOCKET_DIR:
                (self.base_dir / "location").write_text(f"{root}\n", encoding="utf-8")
                return root
            shutil.rmtree(root, ignore_errors=True)
        raise PostgresServerError(f"no temporary directory the {SYSTEM_USER!r} user can write to")

    def _initdb(self) -> None:
        result = self._run([str(self.bin_dir / "initdb"), "--pgdata", str(self.data_dir),
                            "--username", SUPERUSER, "--encoding", "UTF8", "--no-locale",
                            "--auth-local", "trust", "--auth-host", "trust", "--no-sync"], check=False)
        if result.returncode != 0:
            raise PostgresServerError(f"initdb failed ({result.returncode}):\n{result.stdout}{result.stderr}")
        settings = {
            "listen_addresses": _conf_string("127.0.0.1"),
            "unix_socket_directories": _conf_string(str(self.socket_dir)),
            # A test server: no flush to disk (an OS crash may lose data), while a commit still reaches
            # the WAL before it returns, so committed data survives an immediate stop or a killed server.
            "fsync": "off",
            "full_page_writes": "off",
            "max_connections": "50",
            "shared_buffers": "32MB",
        }
        with open(self.data_dir / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("\n# test server settings\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def _start_on_free_port(self) -> None:
        attempts = 5
        for attempt in range(attempts):
            self.port = _free_port()
            try:
                self._pg_ctl_start()
                return
            except PostgresServerError as exc:
                # Another process may take the port between choosing and binding it: choose again.
                if attempt == attempts - 1 or not any(s in str(exc) for s in _BIND_FAILURE):
                    raise

    def _pg_ctl_start(self) -> None:
        log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        result = self._run([str(self.bin_dir / "pg_ctl"), "start", "--pgdata", str(self.data_dir),
                            "--log", str(self.log_file), "--wait", "--timeout", str(int(STARTUP_TIMEOUT)),
                            "-o", f"-p {self.port}"], check=False, timeout=STARTUP_TIMEOUT + 30)
        if result.returncode != 0:
            raise PostgresServerError(
                f"pg_ctl start on port {self.port} failed ({result.returncode}): {result.stdout}{result.stderr}"
                f"\nserver log:\n{self._log_since(log_offset)}")
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        last = ""
        while True:
            ready = subprocess.run([self._client("pg_isready"), "-q", "-h", "127.0.0.1",
                                    "-p", str(self.port), "-U", SUPERUSER, "-d", "postgres"],
                                   capture_output=True, text=True, timeout=30, env=_server_env())
            if ready.returncode == 0:
                probe = self._psql("select 1", "postgres", check=False)
                if probe.returncode == 0 and probe.stdout.strip() == "1":
                    return
                last = probe.stderr.strip()
            else:
                last = f"pg_isready exited with {ready.returncode}"
            if time.monotonic() > deadline:
                raise PostgresServerError(
                    f"PostgreSQL on 127.0.0.1:{self.port} did not accept connections within "
                    f"{STARTUP_TIMEOUT:.0f}s ({last})\nserver log:\n{self.log_tail()}")
            time.sleep(0.1)

    def start_again(self) -> None:
        """Start the stopped server again, on the same port and data directory."""
        if self._closed:
            raise PostgresServerError("the server was closed")
        if self.is_running():
            return
        _live_servers.add(self)
        self._pg_ctl_start()

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``smart``, ``fast`` or ``immediate``); nothing to do when it is not running."""
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"unknown shutdown mode: {mode!r}")
        if not self.data_dir.joinpath("PG_VERSION").exists() or not self.is_running():
            return
        result = self._pg_ctl_stop(mode)
        if result.returncode != 0 and self.is_running():
            if mode != "immediate" and self._pg_ctl_stop("immediate").returncode == 0:
                return
            raise PostgresServerError(
                f"pg_ctl stop failed ({result.returncode}): {result.stdout}{result.stderr}"
                f"\nserver log:\n{self.log_tail()}")

    def _pg_ctl_stop(self, mode: str) -> subprocess.CompletedProcess[str]:
        return self._run([str(self.bin_dir / "pg_ctl"), "stop", "--pgdata", str(self.data_dir),
                          "--mode", mode, "--wait", "--timeout", str(int(STARTUP_TIMEOUT))],
                         check=False, timeout=STARTUP_TIMEOUT + 30)

    def close(self) -> None:
        """Stop the server for good and remove a directory of its own outside ``base_dir``."""
        if self._closed:
            return
        try:
            self.stop()
        finally:
            self._closed = True
            _live_servers.discard(self)
            if self._owned_root:
                shutil.rmtree(self.root, ignore_errors=True)

    def is_running(self) -> bool:
        if not self.data_dir.joinpath("PG_VERSION").exists():
            return False
        status = self._run([str(self.bin_dir / "pg_ctl"), "status", "--pgdata", str(self.data_dir)],
                           check=False)
        return status.returncode == 0

    # --- databases -----------------------------------------------------------------------------

    def conninfo(self, dbname: str = "postgres") -> str:
        """A libpq keyword/value connection string (as DuckDB's postgres and ducklake extensions take)."""
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname={dbname}"

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run SQL through ``psql`` over TCP and return its unaligned, tuples-only output."""
        return self._psql(sql, dbname, check=True).stdout

    def create_database(self, name: str) -> None:
        self.psql(f"CREATE DATABASE {_quote_identifier(name)}")

    def drop_database(self, name: str) -> None:
        self.psql(f"DROP DATABASE IF EXISTS {_quote_identifier(name)} WITH (FORCE)")

    def _psql(self, sql: str, dbname: str, check: bool) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([self._client("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                                 "-d", self.conninfo(dbname), "-c", sql],
                                capture_output=True, text=True, timeout=120, env=_server_env())
        if check and result.returncode != 0:
            raise PostgresServerError(f"psql failed ({result.returncode}) on {sql!r}: {result.stderr.strip()}")
        return result

    # --- diagnostics ---------------------------------------------------------------------------

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    def _log_since(self, offset: int, lines: int = 40) -> str:
        try:
            with open(self.log_file, "rb") as log:
                log.seek(offset)
                text = log.read().decode("utf-8", errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    def __repr__(self) -> str:
        return f"PostgresServer(port={self.port}, data_dir={str(self.data_dir)!r})"

    # --- processes -----------------------------------------------------------------------------

    def _client(self, name: str) -> str:
        own = self.bin_dir / name
        if own.is_file():
            return str(own)
        found = shutil.which(name)
        if found is None:
            raise PostgresServerError(f"{name} not found next to {self.bin_dir} nor on PATH")
        return found

    def _run(self, argv: list[str], check: bool = True,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run a server command, as the postgres system user when the tests run as root."""
        if self.as_system_user:
            runuser = shutil.which("runuser")
            if runuser:
                argv = [runuser, "-u", SYSTEM_USER, "--", *argv]
            else:
                argv = ["su", "-s", "/bin/sh", SYSTEM_USER, "-c", shlex.join(argv)]
        # The working directory must be one the server's user can enter.
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                cwd=self.root if self.root.is_dir() else "/", env=_server_env())
        if check and result.returncode != 0:
            raise PostgresServerError(f"{argv} failed ({result.returncode}): {result.stderr.strip()}")
        return result


def start_server(base_dir: Path) -> PostgresServer:
    return PostgresServer.start(base_dir)


@atexit.register
def _stop_all() -> None:
    for server in list(_live_servers):
        try:
            server.close()
        except Exception:
            try:
                server.stop("immediate")
            except Exception:
                pass


# --- fixtures -----------------------------------------------------------------------------------


def _unavailable(reason: str) -> NoReturn:
    """Skip, or fail when the team tests are required (CI sets NBGOV_TEAM_TESTS=required)."""
    if os.environ.get("NBGOV_TEAM_TESTS") == "required":
        pytest.fail(f"NBGOV_TEAM_TESTS=required but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A running PostgreSQL server for this test process."""
    bin_dir = find_postgres_bin()
    if bin_dir is None:
        _unavailable(MISSING_BINARIES)
    try:
        server = PostgresServer.start(tmp_path_factory.mktemp("postgres"), bin_dir)
    except (PostgresServerError, OSError, subprocess.SubprocessError) as exc:
        _unavailable(f"PostgreSQL server could not be started: {exc}")
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def team_database(postgres: PostgresServer) -> Iterator[str]:
    """The name of a fresh database on the session's server (dropped afterwards)."""
    if not postgres.is_running():
        postgres.start_again()
    name = f"team_{uuid.uuid4().hex[:16]}"
    postgres.create_database(name)
    try:
        yield name
    finally:
        try:
            if postgres.is_running():
                postgres.drop_database(name)
        except Exception:
            pass
