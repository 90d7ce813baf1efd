"""Tamper evidence: every edit of the DuckDB file is caught by `nbgov verify` at the right seq."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from nbgov import events
from nbgov.ledger import envelope
from nbgov.ledger.facade import Ledger
from nbgov.settings import resolve_settings
from support.helpers import rewrite_history, run_cli

EVENTS = 3000


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("pristine") / "ledger"
    ledger = Ledger(settings=resolve_settings({"home": home, "ingest_batch_events": 500}))
    for i in range(EVENTS):
        kind = i % 3
        if kind == 0:
            ledger.append(events.SessionEnded(reason=f"r{i}", cells=i))
        elif kind == 1:
            ledger.append(events.MetricsLogged(metrics={"auc": 0.5 + i / 10_000, "i": i}, model="m", version=i))
        else:
            ledger.append(events.Correction(corrects=f"x:{i}", reason="typo", changes={"note": "é ü ✓"}),
                          session=envelope.Session(kernel_id="k", cell_id=f"c{i}", execution_count=i))
    ledger.ingest()
    ledger.close()
    assert run_cli("--home", str(home), "verify").returncode == 0
    return home


@pytest.fixture
def copy(pristine: Path, tmp_path: Path) -> Path:
    home = tmp_path / "ledger"
    shutil.copytree(pristine, home)
    return home


def _tamper(home: Path, *statements: str) -> None:
    con = duckdb.connect(str(home / "ledger.duckdb"))
    try:
        for statement in statements:
            con.execute(statement)
    finally:
        con.close()


def _first_bad_seq(home: Path, *extra: str) -> tuple[int, str]:
    result = run_cli("--home", str(home), "verify", *extra)
    assert result.returncode == 1, result.stdout + result.stderr
    match = re.search(r"first bad seq (\d+): (.*)", result.stderr)
    assert match, result.stderr
    return int(match[1]), match[2]


FIELD_EDITS: dict[str, Callable[[int], str]] = {
    "seq": lambda s: f"UPDATE event_log SET seq = seq + 1000000 WHERE seq = {s}",
    "ingested_at": lambda s: f"UPDATE event_log SET ingested_at = ingested_at + INTERVAL 1 MICROSECOND WHERE seq = {s}",
    "event_id": lambda s: f"UPDATE event_log SET event_id = event_id || 'x' WHERE seq = {s}",
    "type": lambda s: f"UPDATE event_log SET type = 'model_fitted' WHERE seq = {s}",
    "version": lambda s: f"UPDATE event_log SET version = version + 1 WHERE seq = {s}",
    "event_time": lambda s: f"UPDATE event_log SET event_time = event_time - INTERVAL 1 DAY WHERE seq = {s}",
    "actor": lambda s: f"UPDATE event_log SET actor = 'someone-else' WHERE seq = {s}",
    "actor_source": lambda s: f"UPDATE event_log SET actor_source = 'jupyterhub' WHERE seq = {s}",
    "body": lambda s: f"UPDATE event_log SET body = encode(replace(decode(body), '\"r', '\"R')) "
                      f"WHERE seq = {s}" if s % 3 == 1 else
                      f"UPDATE event_log SET body = encode(replace(decode(body), ':0.', ':1.')) WHERE seq = {s}",
    "leaf_hash": lambda s: f"UPDATE event_log SET leaf_hash = sha256('x')::BLOB WHERE seq = {s}",
    "chain_hash": lambda s: f"UPDATE event_log SET chain_hash = sha256('x')::BLOB WHERE seq = {s}",
}


@pytest.mark.parametrize("seq", [1, 1234, EVENTS])
@pytest.mark.parametrize("field", sorted(FIELD_EDITS))
def test_changing_any_field_of_any_event(copy: Path, field: str, seq: int) -> None:
    statement = FIELD_EDITS[field](seq)
    if field == "body" and seq % 3 == 0:
        statement = f"UPDATE event_log SET body = encode(replace(decode(body), 'typo', 'typO')) WHERE seq = {seq}"
    _tamper(copy, statement)
    assert _first_bad_seq(copy)[0] == seq


def test_deleting_an_event(copy: Path) -> None:
    _tamper(copy, "DELETE FROM event_log WHERE seq = 777")
    seq, detail = _first_bad_seq(copy)
    assert seq == 777 and "missing" in detail


def test_inserting_an_event(copy: Path) -> None:
    _tamper(copy, "INSERT INTO event_log SELECT * FROM event_log WHERE seq = 500")
    seq, detail = _first_bad_seq(copy)
    assert seq == 500 and "more than once" in detail


def test_inserting_a_forged_event_with_recomputed_hashes(copy: Path) -> None:
    """A forger who shifts later events and hashes the inserted one correctly is caught where
    the shifted events no longer match their leaves."""
    from nbgov.ledger.envelope import format_time
    from nbgov.ledger.integrity.chain import chain_hash, leaf_hash

    con = duckdb.connect(str(copy / "ledger.duckdb"))
    (prev_chain,) = con.execute("SELECT chain_hash FROM event_log WHERE seq = 999").fetchone()
    body, micros = con.execute("SELECT body, epoch_us(ingested_at) FROM event_log WHERE seq = 1000").fetchone()
    forged = bytes(body).replace(b"typo", b"forged")
    leaf = leaf_hash(forged, format_time(micros * 1000), 1000)
    con.execute("UPDATE event_log SET seq = seq + 1 WHERE seq >= 1000")
    con.execute("INSERT INTO event_log SELECT 1000, ingested_at, event_id, type, version, event_time, actor, "
                "actor_source, $b, $l, $c FROM event_log WHERE seq = 1001",
                {"b": forged, "l": leaf, "c": chain_hash(bytes(prev_chain), leaf)})
    con.close()
    seq, detail = _first_bad_seq(copy)
    assert seq == 1001 and "leaf" in detail


def test_swapping_two_events(copy: Path) -> None:
    _tamper(copy, "UPDATE event_log SET seq = CASE seq WHEN 1500 THEN 1502 ELSE 1500 END WHERE seq IN (1500, 1502)")
    assert _first_bad_seq(copy)[0] == 1500


def test_truncating_the_tail(copy: Path) -> None:
    _tamper(copy, f"DELETE FROM event_log WHERE seq > {EVENTS - 10}")
    seq, detail = _first_bad_seq(copy)
    assert seq == EVENTS - 9 and "missing at the end" in detail


def _export(home: Path, path: Path) -> Path:
    """Export the latest checkpoint to *path* and its signer's verifier key beside it
    (``<path>.keys``), as the ledger's owner hands both to an auditor."""
    result = run_cli("--home", str(home), "checkpoint", "export", str(path))
    assert result.returncode == 0, result.stderr
    keys = run_cli("--home", str(home), "checkpoint", "keys")
    assert keys.returncode == 0 and keys.stdout.strip(), keys.stderr
    path.with_suffix(".keys").write_text(keys.stdout)
    return path


def _against(note: Path) -> tuple[str, ...]:
    return ("--against", str(note), "--key", str(note.with_suffix(".keys")))


def test_truncating_whole_batches_is_caught_by_a_checkpoint_kept_elsewhere(copy: Path, tmp_path: Path) -> None:
    checkpoint = _export(copy, tmp_path / "cp.note")
    # Remove the last ingest batch of events (and the checkpoint recorded after it), and the
    # Merkle subtrees over them: the ledger is self-consistent again...
    first_removed = EVENTS - 500 + 1
    _tamper(copy,
            f"DELETE FROM event_log WHERE seq >= {first_removed}",
            f"DELETE FROM ingest_batches WHERE first_seq >= {first_removed}",
            f"DELETE FROM merkle_nodes WHERE (idx + 1) * (1::BIGINT << level) >= {first_removed}")
    assert run_cli("--home", str(copy), "verify").returncode == 0
    # ...but not with the checkpoint kept outside the DuckDB file.
    seq, detail = _first_bad_seq(copy, *_against(checkpoint))
    assert seq == first_removed and "removed" in detail


def test_a_rewritten_history_is_caught_by_a_checkpoint(copy: Path, tmp_path: Path) -> None:
    checkpoint = _export(copy, tmp_path / "cp.note")
    # The consistent forger first drops the checkpoints recorded inside the ledger (the events
    # after the last real one), which would otherwise certify the history they change.
    rewrite_history(copy, lambda seq, body: body.replace(b'"r3"', b'"R3"') if seq == 4 else body,
                    keep_up_to=EVENTS)
    assert run_cli("--home", str(copy), "verify").returncode == 0
    seq, detail = _first_bad_seq(copy, *_against(checkpoint))
    assert seq == EVENTS and "rewritten" in detail
    # Without the key given separately the forger's removal of the key registration shows too.
    _, detail = _first_bad_seq(copy, "--against", str(checkpoint))
    assert "not signed by a trusted key" in detail


def test_a_checkpoint_recorded_inside_catches_a_rewrite_that_kept_it(copy: Path, tmp_path: Path) -> None:
    _export(copy, tmp_path / "cp.note")
    con = duckdb.connect(str(copy / "ledger.duckdb"))
    checkpoint_seq = con.execute(
        "SELECT max(seq) FROM event_log WHERE type = 'checkpoint_signed'").fetchone()[0]  # type: ignore[index]
    con.close()
    # Rewrite events before the recorded checkpoint but keep the checkpoint events themselves.
    rewrite_history(copy, lambda seq, body: body.replace(b'"r3"', b'"R3"') if seq == 4 else body)
    seq, detail = _first_bad_seq(copy)
    assert seq == checkpoint_seq and "signed root differs" in detail


def test_a_checkpoint_of_another_ledger_is_refused(copy: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    assert run_cli("--home", str(other), "init").returncode == 0
    checkpoint = _export(other, tmp_path / "other.note")
    _, detail = _first_bad_seq(copy, *_against(checkpoint))
    assert "is for origin" in detail


def test_an_old_unsigned_head_file_is_still_accepted(copy: Path, tmp_path: Path) -> None:
    from nbgov.ledger.facade import Ledger as _Ledger
    from nbgov.ledger.integrity.verify import write_head_file

    head = tmp_path / "head.json"
    write_head_file(_Ledger(copy).head(), head)
    result = run_cli("--home", str(copy), "verify", "--against", str(head))
    assert result.returncode == 0 and "head at seq" in result.stdout, result.stdout + result.stderr
    _tamper(copy, f"DELETE FROM event_log WHERE seq > {EVENTS - 10}",
            f"DELETE FROM ingest_batches WHERE first_seq > {EVENTS - 10}")
    seq, _ = _first_bad_seq(copy, "--against", str(head))
    assert seq <= EVENTS
