"""The README's SQL reference matches the ledger's real relations and columns."""

from __future__ import annotations

import re
from pathlib import Path

from nbgov.ledger.facade import Ledger

README = Path(__file__).parents[1] / "README.md"


def _documented() -> dict[str, list[str]]:
    section = README.read_text().split("## SQL reference", 1)[1].split("\n## ", 1)[0]
    relations = {}
    for line in section.splitlines():
        match = re.match(r"\| `(\w+)` \| (.+) \|$", line)
        if match:
            relations[match[1]] = re.findall(r"`(\w+)`", match[2])
    return relations


def test_sql_reference_lists_every_relation_and_column(home: Path) -> None:
    ledger = Ledger.init(home)
    actual: dict[str, list[str]] = {}
    for table, column in ledger.query(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position"
    ).itertuples(index=False):
        actual.setdefault(table, []).append(column)
    assert _documented() == actual
