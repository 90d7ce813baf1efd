"""One --format for every command: rows as table, csv or json; documents as text or json."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from nbgov.cli.main import cli
from nbgov.ledger import Ledger

ROW_COMMANDS = [
    ["sql", "SELECT 1 AS one, 'a b' AS two"],
    ["role", "list"],
    ["vendor", "list"],
    ["risk", "list"],
    ["data", "report"],
    ["review", "list"],
    ["schedule", "list"],
    ["schedule", "history"],
    ["alerts", "list"],
]
DOCUMENT_COMMANDS = [["status"], ["checkpoint", "list"]]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("formats") / "ledger"
    Ledger.init(home).close()
    return home


def _run(home: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("command", ROW_COMMANDS, ids=" ".join)
def test_every_row_command_takes_the_same_formats(home: Path, command: list[str]) -> None:
    as_json = json.loads(_run(home, *command, "--format", "json"))
    assert isinstance(as_json, list)
    assert json.loads(_run(home, *command, "--json")) == as_json
    rows = list(csv.reader(io.StringIO(_run(home, *command, "--format", "csv"))))
    if as_json:
        assert rows[0] == list(as_json[0]) and len(rows) == len(as_json) + 1
    table = _run(home, *command, "--format", "table")
    assert table.strip()
    if command[0] == "sql":
        assert as_json == [{"one": 1, "two": "a b"}]
        assert table.splitlines()[0].split() == ["one", "two"] and "(1 row)" in table


@pytest.mark.parametrize("command", DOCUMENT_COMMANDS, ids=" ".join)
def test_document_commands_take_text_or_json(home: Path, command: list[str]) -> None:
    text = _run(home, *command, "--format", "text")
    assert text.strip()
    out = _run(home, *command, "--format", "json")
    assert out == _run(home, *command, "--json")
    if command == ["status"]:
        assert json.loads(out)["events"] >= 1
    result = CliRunner().invoke(cli, ["--home", str(home), *command, "--format", "csv"])
    assert result.exit_code != 0 and "csv" in result.output
