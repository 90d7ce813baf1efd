"""How pytest-xdist hands the tests to its workers (installed by tests/conftest.py).

Each worker takes the next unit of work as it frees up (at most a few tests queued ahead), in the
order of the collection, which conftest.py sets: tests sharing an expensive setup and long tests
first, so that no worker is left running a long test at the end while the others idle.

A unit is one test, or every test of one ``xdist_group`` (``@pytest.mark.xdist_group("name")``,
or added by conftest.py to the tests sharing a module-scoped fixture): one worker runs the whole
group, so a setup they share (a module or session fixture) is built once, not once per worker.

pytest-xdist's own ``--dist loadgroup`` passes the group to the controller by appending it to the
test's node id, which pytest 9.2's structured node ids no longer allow (pytest-dev/pytest-xdist
#1386: the groups are silently ignored). Here the workers write the groups to a file the
controller names in their ``workerinput``, and the controller reads it once every worker has
collected (pytest-xdist checks that they all collected the same tests).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling

#: The workerinput key naming the file the workers write the groups to.
GROUPS_INPUT = "nbgov_xdist_groups"


def group_of(item: pytest.Item) -> str | None:
    """The item's xdist group (its ``xdist_group`` marks' names joined, as pytest-xdist does)."""
    names = {str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
             for mark in item.iter_markers("xdist_group")}
    return "_".join(sorted(names)) if names else None


def write_groups(path: Path, items: list[pytest.Item]) -> None:
    """Write {node id: group} of the grouped *items* to *path* (every worker writes the same)."""
    groups = {item.nodeid: group for item in items if (group := group_of(item)) is not None}
    partial = path.with_name(f"{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(groups, sort_keys=True))
    os.replace(partial, path)


class SharedSetupScheduling(LoadScopeScheduling):  # type: ignore[misc]
    """pytest-xdist's scope scheduling with one scope per group, and per test otherwise, handed
    out in collection order."""

    def __init__(self, config: pytest.Config, log: Any = None, *, groups_file: Path) -> None:
        super().__init__(config, log)
        self.groups_file = groups_file
        self.groups: dict[str, str] = {}

    def schedule(self) -> None:
        if self.collection is None:  # the first call: every worker has collected (and written)
            try:
                self.groups = json.loads(self.groups_file.read_text())
            except FileNotFoundError:
                self.groups = {}
        # LoadScopeScheduling sorts its units by size unless told not to: keep conftest's order.
        reorder = self.config.option.loadscopereorder
        self.config.option.loadscopereorder = False
        try:
            super().schedule()
        finally:
            self.config.option.loadscopereorder = reorder

    def _split_scope(self, nodeid: str) -> str:
        return self.groups.get(nodeid, nodeid)
