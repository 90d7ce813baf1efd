"""Magic misuse: a short error, never a traceback through nbgov internals; the ledger untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
from IPython.utils.capture import capture_output

from nbgov.ledger.facade import Ledger


@pytest.fixture
def shell(shell):  # type: ignore[no-untyped-def]
    """The shared shell (conftest.py), recording into tmp_path / "ledger", with a variable bound."""
    shell.run_cell("value = 3")
    return shell


def _data_events(home: Path) -> list[tuple[int, str]]:
    frame = Ledger(home).query("SELECT seq, type FROM events WHERE type NOT IN ('cell_executed') ORDER BY seq")
    return list(frame.itertuples(index=False, name=None))


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("%nbgov bogus", "unknown command 'bogus'; valid commands: sql, dataset, check, approve, reject, request, panel, fairness, drift, policy, status, flush, help"),
        ("%nbgov", "unknown command ''"),
        ("%nbgov sql DELETE FROM event_log", "DELETE statements are refused"),
        ("%%nbgov_sql\nINSERT INTO event_log SELECT * FROM event_log", "INSERT statements are refused"),
        ("%%nbgov_sql\nDROP VIEW events", "DROP statements are refused"),
        ("%nbgov sql SELEC 1", "syntax error"),
        ("%nbgov sql -p 1x=3 SELECT 1", "expected NAME=VALUE"),
        ("%nbgov sql -p missing SELECT $missing", "no notebook variable 'missing'"),
        ("%nbgov sql SELECT $nothing", "missing value for parameter"),
        ("%nbgov dataset", "the following arguments are required: path"),
        ("%nbgov dataset data.csv --licence MIT", "unrecognized arguments: --licence MIT"),
        ("%nbgov dataset no/such/file.csv", "no dataset at"),
        ("%%nbgov train\nx = 1", "the following arguments are required: --model"),
        ("%%nbgov status\nx = 1", "the cell form runs 'train --model NAME'"),
        ("%nbgov status now", "takes no arguments"),
    ],
)
def test_misuse_gives_a_short_error(shell, tmp_path: Path, cell: str, message: str) -> None:
    before = _data_events(tmp_path / "ledger")
    with capture_output() as captured:
        result = shell.run_cell(cell)
    text = captured.stdout + captured.stderr
    assert not result.success
    assert message in text, text
    assert "Traceback" not in text and "nbgov/" not in text and len(text.strip().splitlines()) <= 3, text
    assert _data_events(tmp_path / "ledger") == before


def test_sql_magic_returns_a_frame_binds_parameters_and_assigns(shell) -> None:
    result = shell.run_cell("%%nbgov_sql -o counted -p kind=cell_executed -p value\n"
                            "SELECT count(*) AS n, $value AS v FROM events WHERE type = $kind")
    assert result.success
    frame = shell.user_ns["counted"]
    assert frame["n"][0] >= 1 and frame["v"][0] == 3
    assert result.result is frame
    line = shell.run_cell("%nbgov sql -o t SELECT 'it''s' AS quoted, 2 AS n")
    assert line.success and shell.user_ns["t"]["quoted"][0] == "it's"


def test_sql_magic_text_is_not_expanded(shell) -> None:
    # {value} and $value stay literal: only -p binds values, so the recorded SQL is what ran.
    result = shell.run_cell("%nbgov sql SELECT '{value}' AS braces")
    assert result.success and shell.last_execution_result.result["braces"][0] == "{value}"


def test_help_and_status(shell) -> None:
    with capture_output() as captured:
        assert shell.run_cell("%nbgov help").success
    assert "%nbgov dataset PATH" in captured.stdout
    status = shell.run_cell("%nbgov status").result
    assert "session_started" in set(status["type"])


def test_reading_the_ledger_records_no_lineage(shell, tmp_path: Path) -> None:
    # The ledger's read snapshot is Parquet files that nbgov reads with DuckDB, which capture
    # patches: nbgov's own reads are not the user's lineage. The user's own read, beside them, is.
    home = tmp_path / "ledger"
    data = tmp_path / "mine.parquet"
    Ledger(home).query("SELECT * FROM events")  # as the panel reads, between cells
    for cell in (f"import duckdb, pandas as pd\npd.DataFrame({{'a': [1, 2]}}).to_parquet({str(data)!r})",
                 "%nbgov sql SELECT count(*) AS n FROM events",
                 "%%nbgov_sql -o seen\nSELECT type, count(*) AS n FROM events GROUP BY type",
                 f"from nbgov.ledger.facade import Ledger\nLedger({str(home)!r}).query('SELECT * FROM models')",
                 f"mine = duckdb.sql(\"SELECT * FROM read_parquet('{data}')\").df()"):
        assert shell.run_cell(cell).success, cell
    Ledger(home).query("SELECT * FROM events")  # as the panel reads, between cells
    shell.run_cell("%nbgov flush")
    Ledger(home).query("SELECT * FROM models")
    shell.run_cell("%nbgov flush")
    reads = Ledger(home).query(
        "SELECT payload->>'path' AS path FROM events WHERE type = 'dataset_read' ORDER BY seq")
    assert list(reads["path"]) == [str(data)]
