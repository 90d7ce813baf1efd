"""Bad input gets a one-line error and leaves the ledger exactly as it was."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nbgov import events
from nbgov.errors import InvalidPayload, UnknownEventType
from nbgov.ledger.facade import Ledger
from support.helpers import clean_env, invoke_cli, run_cli


def _tree_digest(root: Path) -> dict[str, str]:
    """Every file's content, except ingest.lock (a lock whose note names the last ingester)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file() and p.name != "ingest.lock"
    }


def _one_line_error(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stderr.startswith("nbgov: error: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert fragment in result.stderr, result.stderr


@pytest.fixture
def ledger_home(home: Path) -> Path:
    ledger = Ledger.init(home)
    ledger.append(events.SessionEnded(reason="existing"))
    ledger.ingest()
    ledger.close()
    return home


def test_unknown_event_type_is_refused_and_nothing_written(ledger_home: Path) -> None:
    before = _tree_digest(ledger_home)
    ledger = Ledger(ledger_home)
    with pytest.raises(UnknownEventType):
        events.make_event("secret_event", x=1)

    class NotAnEvent:
        TYPE = "not_registered"

        def payload(self) -> dict[str, int]:
            return {}

    with pytest.raises(UnknownEventType):
        ledger.append(NotAnEvent())  # type: ignore[arg-type]
    assert _tree_digest(ledger_home) == before


def test_non_serialisable_payload_is_refused_and_nothing_written(ledger_home: Path) -> None:
    before = _tree_digest(ledger_home)
    ledger = Ledger(ledger_home)
    with pytest.raises(InvalidPayload, match=r"payload\['metrics'\]\['model'\]"):
        ledger.append(events.MetricsLogged(metrics={"model": object()}))
    with pytest.raises(InvalidPayload, match="not a JSON number"):
        ledger.append(events.MetricsLogged(metrics={"auc": float("nan")}))
    assert _tree_digest(ledger_home) == before


@pytest.mark.parametrize("command", [["status"], ["sql", "SELECT 1"], ["verify"], ["ingest"]])
def test_a_directory_that_is_not_a_ledger(tmp_path: Path, command: list[str]) -> None:
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"\xff\xd8 not really")
    before = _tree_digest(foreign)
    _one_line_error(invoke_cli("--home", str(foreign), *command), "is not an nbgov ledger")
    assert _tree_digest(foreign) == before


def test_init_refuses_a_foreign_non_empty_directory(tmp_path: Path) -> None:
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"x")
    _one_line_error(invoke_cli("--home", str(foreign), "init"), "already holds other files")
    assert [p.name for p in foreign.iterdir()] == ["cat.jpg"]


def test_a_missing_ledger(tmp_path: Path) -> None:
    _one_line_error(invoke_cli("--home", str(tmp_path / "nowhere"), "status"), "does not exist")
    assert not (tmp_path / "nowhere").exists()


def test_home_that_is_a_file(tmp_path: Path) -> None:
    target = tmp_path / "file.txt"
    target.write_text("x")
    _one_line_error(invoke_cli("--home", str(target), "init"), "not a directory")


@pytest.mark.parametrize("content", [b"", b"hello, not a database", os.urandom(300_000)],
                         ids=["empty", "text", "random"])
def test_a_corrupt_duckdb_file(ledger_home: Path, content: bytes) -> None:
    (ledger_home / "ledger.duckdb").write_bytes(content)
    before = _tree_digest(ledger_home)
    for command in (["sql", "SELECT 1"], ["status"], ["verify"]):
        _one_line_error(run_cli("--home", str(ledger_home), *command), "DuckDB")
    assert _tree_digest(ledger_home) == before


def test_a_ledger_damaged_inside(home: Path) -> None:
    ledger = Ledger.init(home)
    for i in range(20_000):
        ledger.append(events.SessionEnded(reason=f"padding {i} " * 4))
    ledger.ingest()
    ledger.close()
    path = home / "ledger.duckdb"
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = os.urandom(4096)
    path.write_bytes(bytes(data))
    result = run_cli("--home", str(home), "verify")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") <= 11


def _in_read_only_mount(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m nbgov ARGS`` with *directory* bind-mounted read-only (a private mount)."""
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", str(directory),
         sys.executable, "-m", "nbgov", *args],
        capture_output=True, text=True, env=clean_env(), timeout=120,
    )


@pytest.fixture
def read_only_mounts_work(tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    probe.mkdir()
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to make a read-only mount")
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && ! touch "$1/x"'
    result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                             str(probe)], capture_output=True)
    if result.returncode != 0:
        pytest.skip("cannot make a read-only mount here (needs root or user namespaces)")


def test_init_in_a_read_only_directory(read_only_mounts_work: None, tmp_path: Path) -> None:
    parent = tmp_path / "ro"
    parent.mkdir()
    result = _in_read_only_mount(parent, "--home", str(parent / "ledger"), "init")
    _one_line_error(result, "Read-only file system")
    assert list(parent.iterdir()) == []


def test_a_ledger_on_a_read_only_filesystem_can_still_be_read(
    read_only_mounts_work: None, ledger_home: Path
) -> None:
    ledger = Ledger(ledger_home)
    ledger.append(events.SessionEnded(reason="pending"))  # un-ingested: cannot be ingested read-only
    ledger.close()
    before = _tree_digest(ledger_home)
    query = _in_read_only_mount(ledger_home, "--home", str(ledger_home), "sql", "--format", "csv",
                                "SELECT count(*) AS n FROM events WHERE type = 'session_ended'")
    assert query.returncode == 0, query.stderr
    assert query.stdout.splitlines() == ["n", "1"]
    assert query.stderr.startswith("nbgov: warning: could not ingest pending spool lines")
    verify = _in_read_only_mount(ledger_home, "--home", str(ledger_home), "verify")
    assert verify.returncode == 0, verify.stderr
    _one_line_error(_in_read_only_mount(ledger_home, "--home", str(ledger_home), "ingest"),
                    "Read-only file system")
    assert _tree_digest(ledger_home) == before
