"""The PostgreSQL server helper the team-backend tests run against (tests/support/pg_server.py)."""

from __future__ import annotations

import os
import subprocess

import pytest

from support.pg_server import (
    MISSING_BINARIES,
    SERVER_BINARIES,
    PostgresServer,
    _unavailable,
    find_postgres_bin,
)

# The fixtures `postgres` (one server per test process) and `team_database`. Registered as a plugin, not
# imported: an imported session fixture would start one server per importing module.


def test_finds_the_server_binaries(postgres: PostgresServer) -> None:
    bin_dir = find_postgres_bin()
    assert bin_dir is not None
    for name in SERVER_BINARIES:
        assert os.access(bin_dir / name, os.X_OK)


def test_server_accepts_queries_over_tcp(postgres: PostgresServer) -> None:
    assert postgres.is_running()
    assert postgres.port > 0
    assert postgres.conninfo("postgres") == f"host=127.0.0.1 port={postgres.port} user=nbgov dbname=postgres"
    assert postgres.psql("select 1").strip() == "1"
    # A plain psql, as a user would type it, with the keyword/value string.
    out = subprocess.run(["psql", "-X", "-A", "-t", "-d", postgres.conninfo("postgres"),
                          "-c", "select current_user, pg_encoding_to_char(encoding) from pg_database"
                                " where datname = current_database()"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "nbgov|UTF8"


def test_server_listens_only_on_loopback_with_its_own_socket(postgres: PostgresServer) -> None:
    assert postgres.psql("show listen_addresses").strip() == "127.0.0.1"
    socket_dir = postgres.psql("show unix_socket_directories").strip()
    assert socket_dir == str(postgres.socket_dir)
    assert "/var/run/postgresql" not in socket_dir and not socket_dir.startswith("/run/")
    assert postgres.psql("show port").strip() == str(postgres.port)


def test_create_and_drop_database(postgres: PostgresServer) -> None:
    postgres.create_database("helper_check")
    try:
        assert postgres.psql("select count(*) from pg_database where datname = 'helper_check'").strip() == "1"
        postgres.psql("create table t (x int); insert into t values (7)", dbname="helper_check")
        assert postgres.psql("select x from t", dbname="helper_check").strip() == "7"
    finally:
        postgres.drop_database("helper_check")
    assert postgres.psql("select count(*) from pg_database where datname = 'helper_check'").strip() == "0"
    postgres.drop_database("helper_check")  # already gone: no error


def test_database_names_are_checked(postgres: PostgresServer) -> None:
    with pytest.raises(ValueError):
        postgres.create_database('x"; drop database postgres; --')


def test_team_database_is_fresh_and_empty(postgres: PostgresServer, team_database: str) -> None:
    assert team_database.startswith("team_")
    tables = postgres.psql("select count(*) from information_schema.tables where table_schema = 'public'",
                           dbname=team_database)
    assert tables.strip() == "0"
    assert postgres.psql("select current_database()", dbname=team_database).strip() == team_database


def test_stop_and_start_again_keeps_data(postgres: PostgresServer, team_database: str) -> None:
    postgres.psql("create table kept (id int primary key, note text);"
                  " insert into kept values (1, 'before the stop')", dbname=team_database)
    port = postgres.port
    postgres.stop()
    try:
        assert not postgres.is_running()
        refused = subprocess.run(["psql", "-X", "-d", postgres.conninfo(team_database), "-c", "select 1"],
                                 capture_output=True, text=True, timeout=60)
        assert refused.returncode != 0
        postgres.stop()  # idempotent
        assert not postgres.is_running()
    finally:
        postgres.start_again()
    assert postgres.is_running()
    assert postgres.port == port
    assert postgres.psql("select id, note from kept", dbname=team_database).strip() == "1|before the stop"


def test_immediate_stop_recovers_committed_data(postgres: PostgresServer, team_database: str) -> None:
    postgres.psql("create table crashed (id int); insert into crashed values (42)", dbname=team_database)
    postgres.stop("immediate")
    try:
        assert not postgres.is_running()
    finally:
        postgres.start_again()
    assert postgres.psql("select id from crashed", dbname=team_database).strip() == "42"


def test_start_again_is_a_no_op_when_running(postgres: PostgresServer) -> None:
    port = postgres.port
    postgres.start_again()
    assert postgres.is_running() and postgres.port == port


def test_log_tail(postgres: PostgresServer) -> None:
    tail = postgres.log_tail(200)
    assert "ready to accept connections" in tail
    assert len(postgres.log_tail(3).splitlines()) <= 3


def test_unavailable_skips_unless_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NBGOV_TEAM_TESTS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no PostgreSQL server binaries"):
        _unavailable(MISSING_BINARIES)
    monkeypatch.setenv("NBGOV_TEAM_TESTS", "required")
    with pytest.raises(pytest.fail.Exception, match="NBGOV_TEAM_TESTS=required"):
        _unavailable(MISSING_BINARIES)
