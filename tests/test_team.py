"""The team backend: one ledger in a DuckLake catalog on a real PostgreSQL server, written by
several hosts (separate processes, separate spools) at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nbgov import events
from nbgov.errors import ConfigError
from nbgov.ledger.facade import Ledger
from nbgov.settings import parse_ledger_url, resolve_settings
from support.helpers import WORKERS, clean_env, run_cli, sample_ledger


def _url(postgres, database: str, data: Path) -> str:  # type: ignore[no-untyped-def]
    return f"ducklake:postgres:{postgres.conninfo(database)};data={data}"


def _host(home: Path, url: str, **settings: object) -> Ledger:
    return Ledger(settings=resolve_settings({"home": home, "ledger": url, **settings}))


# -- the URL ---------------------------------------------------------------------------------------


def test_ledger_urls_are_parsed_and_secrets_refused_without_echoing_them() -> None:
    location = parse_ledger_url("ducklake:postgres:dbname=nbgov host=db.example.org;data=/shared/nbgov")
    assert location.conninfo == "dbname=nbgov host=db.example.org" and location.data_path == "/shared/nbgov/"
    for bad, message in [
        ("ducklake:postgres:dbname=nbgov password=hunter2;data=/x", "must not hold a password"),
        ("ducklake:postgres:dbname=nbgov", "needs data=PATH"),
        ("ducklake:postgres:;data=/x", "no PostgreSQL connection keywords"),
        ("ducklake:postgres:dbname=n;data=/x;cache=1", "unknown ledger URL option"),
        ("postgres://db/nbgov", "is not ducklake:postgres:"),
        ("ducklake:postgres:dbname=n;data=s3://bucket/nbgov/", "object storage data paths are not supported"),
        ("ducklake:postgres:dbname=n;data=shared/nbgov", "must be absolute"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_ledger_url(bad)
    result = run_cli("sql", "SELECT 1", env={"NBGOV_LEDGER": "ducklake:postgres:dbname=n password=hunter2;data=/x"})
    assert result.returncode == 1 and "hunter2" not in result.stderr + result.stdout
    assert "NBGOV_LEDGER" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_without_the_team_extra_the_error_says_what_to_install(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['duckdb_extension_ducklake'] = None\n"
            "from nbgov.cli import main; main(['--home', sys.argv[1], 'sql', 'SELECT 1'])")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "h")], capture_output=True, text=True,
                            env=clean_env(NBGOV_LEDGER="ducklake:postgres:dbname=n host=127.0.0.1;data=/x"))
    assert result.returncode == 1
    assert "pip install 'nbgov[team]'" in result.stderr and "ducklake" in result.stderr


# -- a real catalog ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_queries_views_and_verify_work_unchanged_on_the_team_ledger(
        postgres, team_database: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = _url(postgres, team_database, tmp_path / "data")
    env = {"NBGOV_LEDGER": url}
    assert run_cli("--home", str(tmp_path / "host"), "init", env=env).returncode == 0
    ledger = _host(tmp_path / "host", url)
    ledger.append(events.MetricsLogged(metrics={"auc": 0.91}, model="credit", version=1))
    assert ledger.query("SELECT metric, value FROM metrics")["value"].tolist() == [0.91]
    counted = run_cli("--home", str(tmp_path / "host"), "sql", "--format", "csv",
                      "SELECT type, count(*) AS n FROM events GROUP BY type ORDER BY type", env=env)
    assert counted.returncode == 0, counted.stderr
    assert counted.stdout.splitlines() == ["type,n", "ledger_created,1", "metrics_logged,1"]
    refused = run_cli("--home", str(tmp_path / "host"), "sql", "DELETE FROM event_log", env=env)
    assert refused.returncode == 1 and "read-only" in refused.stderr.lower() + refused.stdout.lower()
    verified = run_cli("--home", str(tmp_path / "host"), "verify", env=env)
    assert verified.returncode == 0 and "ok: 2 events verified" in verified.stdout, verified.stderr
    # Nothing of the ledger is in the host's directory: only its spool and the extensions.
    assert not (tmp_path / "host" / "ledger.duckdb").exists()


@pytest.mark.slow
def test_three_hosts_ingest_concurrently_into_one_catalog(
        postgres, team_database: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = _url(postgres, team_database, tmp_path / "data")
    assert run_cli("--home", str(tmp_path / "first"), "init", env={"NBGOV_LEDGER": url}).returncode == 0
    per_host = 5000
    hosts = [subprocess.Popen([sys.executable, str(WORKERS / "team_host.py"), str(tmp_path / f"host{i}"), url,
                               str(per_host), f"host{i}"], env=clean_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(3)]
    outcomes = [host.communicate(timeout=900) for host in hosts]
    assert all(host.returncode == 0 for host in hosts), outcomes
    ledger = _host(tmp_path / "first", url)
    rows = ledger.query("SELECT seq, actor, (payload->'metrics'->>'i')::INTEGER AS i FROM events "
                        "WHERE type = 'metrics_logged' ORDER BY seq")
    for i in range(3):
        mine = rows[rows["actor"] == f"host{i}"]["i"].tolist()
        assert mine == list(range(per_host)), f"host{i}: every event exactly once, in order"
    seqs = ledger.query("SELECT seq FROM event_log ORDER BY seq")["seq"].tolist()
    assert seqs == list(range(1, len(seqs) + 1)), "gapless seq"
    assert len(seqs) >= 3 * per_host + 1
    batches = ledger.query("SELECT count(DISTINCT host) AS hosts, count(DISTINCT pid) AS pids FROM ingest_batches")
    assert batches["pids"].iloc[0] >= 3, "each host ingested its own spool"
    # Every ingest cut a signed checkpoint: the hosts' checkpoints interleave in one chain, which
    # verify checks (each one's root and the hash of the one before it).
    signed = ledger.query("SELECT actor, count(*) AS n FROM events WHERE type = 'checkpoint_signed' GROUP BY actor")
    assert dict(zip(signed["actor"], signed["n"])) == {f"host{i}": 6 for i in range(3)}
    verified = run_cli("--home", str(tmp_path / "first"), "verify", env={"NBGOV_LEDGER": url})
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "18 checkpoint(s)" in verified.stdout, verified.stdout


@pytest.mark.slow
def test_hosts_initialising_one_catalog_at_once_record_one_ledger_created(
        postgres, team_database: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = _url(postgres, team_database, tmp_path / "data")
    inits = [subprocess.Popen([sys.executable, "-m", "nbgov", "--home", str(tmp_path / f"host{i}"), "init"],
                              env=clean_env(NBGOV_LEDGER=url), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for i in range(4)]
    outcomes = [init.communicate(timeout=300) for init in inits]
    assert all(init.returncode == 0 for init in inits), outcomes
    # Every host that runs init later, or again, finds the ledger created.
    assert run_cli("--home", str(tmp_path / "host0"), "init", env={"NBGOV_LEDGER": url}).returncode == 0
    created = _host(tmp_path / "host0", url).query(
        "SELECT seq, (payload->>'ledger_id') AS ledger_id FROM events WHERE type = 'ledger_created'")
    assert created["seq"].tolist() == [1], outcomes
    with _host(tmp_path / "host1", url).reader() as con:
        assert created["ledger_id"].tolist() == [con.execute(
            "SELECT value FROM ledger_meta WHERE key = 'ledger_id'").fetchone()[0]]
    verified = run_cli("--home", str(tmp_path / "host2"), "verify", env={"NBGOV_LEDGER": url})
    assert verified.returncode == 0 and "ok: 1 events verified" in verified.stdout, verified.stdout + verified.stderr


@pytest.mark.slow
def test_a_host_initialising_before_the_first_hosts_ingest_does_not_record_a_second_ledger_created(
        postgres, team_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    # The window the concurrent test above hits only sometimes, made certain: host a has decided to
    # record ledger_created (in its own spool) and let go of the lock; host b initialises before
    # host a's ingest, with an empty catalog and an empty spool of its own.
    url = _url(postgres, team_database, tmp_path / "data")
    ingest = Ledger.ingest

    def b_first(self: Ledger, **kwargs: object) -> object:
        if self.home == tmp_path / "a" and not (tmp_path / "b").exists():
            Ledger.init(tmp_path / "b", ledger=url)
        return ingest(self, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Ledger, "ingest", b_first)
    Ledger.init(tmp_path / "a", ledger=url)
    assert (tmp_path / "b").is_dir()
    created = _host(tmp_path / "b", url).query("SELECT seq, actor FROM events WHERE type = 'ledger_created'")
    assert created["seq"].tolist() == [1]


@pytest.mark.slow
def test_postgres_down_mid_run_loses_nothing_and_ingest_resumes(
        postgres, team_database: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = _url(postgres, team_database, tmp_path / "data")
    host = tmp_path / "host"
    assert run_cli("--home", str(host), "init", env={"NBGOV_LEDGER": url}).returncode == 0
    ledger = _host(host, url, lock_timeout=5)
    for i in range(100):
        ledger.append(events.MetricsLogged(metrics={"i": i}, model="m", version=1))
    ledger.ingest()
    postgres.stop()
    try:
        for i in range(100, 250):  # capture goes on into the spool
            ledger.append(events.MetricsLogged(metrics={"i": i}, model="m", version=1))
        down = run_cli("--home", str(host), "ingest", env={"NBGOV_LEDGER": url, "NBGOV_LOCK_TIMEOUT": "5"})
        assert down.returncode == 1 and "unreachable" in down.stderr, down.stderr
        assert len(down.stderr.strip().splitlines()) == 1
        status = run_cli("--home", str(host), "status", "--json", env={"NBGOV_LEDGER": url})
        assert status.returncode == 1
    finally:
        postgres.start_again()
    ledger.append(events.MetricsLogged(metrics={"i": 250}, model="m", version=1))
    ledger.ingest()
    values = ledger.query("SELECT (payload->'metrics'->>'i')::INTEGER AS i FROM events "
                          "WHERE type = 'metrics_logged' ORDER BY seq")["i"].tolist()
    assert values == list(range(251))
    assert run_cli("--home", str(host), "verify", env={"NBGOV_LEDGER": url}).returncode == 0


@pytest.mark.slow
def test_a_local_ledger_migrated_to_the_team_backend_verifies_with_its_checkpoints(
        postgres, team_database: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    local = tmp_path / "local"
    sample_ledger(local)
    note = tmp_path / "before.note"
    assert run_cli("--home", str(local), "checkpoint", "export", str(note)).returncode == 0
    keys = tmp_path / "keys.txt"
    keys.write_text(run_cli("--home", str(local), "checkpoint", "keys").stdout)
    before = Ledger(local).query("SELECT seq, leaf_hash, chain_hash FROM events ORDER BY seq")
    url = _url(postgres, team_database, tmp_path / "data")
    moved = run_cli("--home", str(local), "migrate", "--to", url)
    assert moved.returncode == 0, moved.stderr
    env = {"NBGOV_LEDGER": url}
    team = _host(local, url)
    after = team.query("SELECT seq, leaf_hash, chain_hash FROM events ORDER BY seq")
    assert after.iloc[: len(before)].equals(before), "original seq and hashes kept"
    assert team.query("SELECT type FROM events ORDER BY seq DESC LIMIT 1")["type"].iloc[0] == "ledger_migrated"
    verified = run_cli("--home", str(local), "verify", "--against", str(note), "--key", str(keys), env=env)
    assert verified.returncode == 0 and "extends the checkpoint" in verified.stdout, verified.stderr
    again = run_cli("--home", str(local), "migrate", "--to", url)
    assert again.returncode == 1 and "already holds" in again.stderr


def test_commit_conflicts_are_retried_and_other_errors_are_not() -> None:
    import duckdb

    from nbgov.ledger.ducklake import retry_conflicts

    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise duckdb.TransactionException("Transaction conflict: cannot add rows to event_log")
        return "committed"

    assert retry_conflicts(flaky) == "committed" and len(calls) == 3

    def broken() -> None:
        calls.append(1)
        raise duckdb.TransactionException("disk full")

    calls.clear()
    with pytest.raises(duckdb.TransactionException, match="disk full"):
        retry_conflicts(broken)
    assert len(calls) == 1


@pytest.mark.slow
def test_a_query_ingests_only_when_this_host_has_something_pending(
        postgres, team_database: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from nbgov.ledger.spool import nothing_pending

    url = _url(postgres, team_database, tmp_path / "data")
    host = tmp_path / "host"
    assert run_cli("--home", str(host), "init", env={"NBGOV_LEDGER": url}).returncode == 0
    ledger = _host(host, url)
    spool = ledger.settings.spool_dir
    ledger.append(events.MetricsLogged(metrics={"auc": 0.5}, model="m", version=1))
    assert not nothing_pending(spool)
    assert ledger.query("SELECT count(*) AS n FROM metrics")["n"].iloc[0] == 1  # sees its own write
    assert nothing_pending(spool)
    other = _host(host, url)  # another process of this host appends
    other.append(events.MetricsLogged(metrics={"auc": 0.6}, model="m", version=1))
    assert not nothing_pending(spool)
    assert ledger.query("SELECT count(*) AS n FROM metrics")["n"].iloc[0] == 2
    assert nothing_pending(spool)
    (spool / ".consumed.json").write_text("not json")
    assert not nothing_pending(spool)  # when in doubt, ingest


@pytest.mark.slow
def test_a_notebook_session_ending_while_postgres_is_down_keeps_its_events(
        postgres, team_database: str, make_shell, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from nbgov.errors import NbgovWarning

    url = _url(postgres, team_database, tmp_path / "data")
    host = tmp_path / "host"
    assert run_cli("--home", str(host), "init", env={"NBGOV_LEDGER": url}).returncode == 0
    # nbgov loaded (asserted); every cell must succeed
    shell = make_shell(home=host, env={"NBGOV_LEDGER": url, "NBGOV_LOCK_TIMEOUT": "5"}, raise_errors=True)
    assert shell.run_cell("total = sum(range(10))").success
    postgres.stop()
    try:
        assert shell.run_cell("total += 1").success  # capture goes on while the catalog is down
        with pytest.warns(NbgovWarning, match="stay in the spool"):
            assert shell.run_cell("%unload_ext nbgov").success
    finally:
        postgres.start_again()
    ledger = _host(host, url)
    types = ledger.query("SELECT type, count(*) AS n FROM events GROUP BY type")
    counts = dict(zip(types["type"], types["n"]))
    assert counts["session_ended"] == 1 and counts["cell_executed"] >= 2
    assert run_cli("--home", str(host), "verify", env={"NBGOV_LEDGER": url}).returncode == 0
