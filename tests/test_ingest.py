"""Ingest: spool lines into DuckDB, exactly once, in order, refusing what is bad."""

from __future__ import annotations

from hashlib import sha256
from pathlib import Path

import rfc8785

from nbgov.events import SessionEnded
from nbgov.ledger.facade import Ledger
from nbgov.ledger.spool import list_segments
from nbgov.settings import resolve_settings


def _ledger(home: Path, **settings: object) -> Ledger:
    return Ledger(settings=resolve_settings({"home": home, **settings}))


def _append_line(path: Path, body: bytes) -> None:
    """Append a correctly chained line (as a foreign writer could) to a segment."""
    lines = path.read_bytes().splitlines()
    n = len(lines) + 1
    prev = lines[-1].rsplit(b"\t", 1)[1] if lines else b"0" * 64
    content = b"nbgov1\t%d\t%b\t%b" % (n, prev, body)
    with open(path, "ab") as fh:
        fh.write(content + b"\t" + sha256(content).hexdigest().encode() + b"\n")


def _body(event_id: str, **changes: object) -> bytes:
    data: dict[str, object] = {
        "actor": {"id": "mallory", "source": "os"}, "id": event_id, "payload": {"reason": "x", "cells": 0},
        "session": None, "time": "2026-11-28T10:00:00.000001Z", "type": "session_ended", "v": 1,
    }
    data.update(changes)
    return rfc8785.dumps(data)


def test_ingest_is_idempotent_and_gapless(home: Path) -> None:
    ledger = _ledger(home)
    ids = [ledger.append(SessionEnded(reason=str(i))) for i in range(25)]
    first = ledger.ingest()
    assert (first.events, first.first_seq, first.last_seq) == (25, 1, 25)
    again = ledger.ingest()
    assert again.events == 0 and again.batches == 0
    rows = ledger.query("SELECT seq, event_id, payload->>'reason' AS reason FROM events ORDER BY seq")
    assert rows["seq"].tolist() == list(range(1, 26))
    assert rows["event_id"].tolist() == ids
    assert rows["reason"].tolist() == [str(i) for i in range(25)]


def test_small_batches_commit_one_transaction_each(home: Path) -> None:
    ledger = _ledger(home, ingest_batch_events=7)
    for i in range(30):
        ledger.append(SessionEnded(reason=str(i)))
    report = ledger.ingest()
    assert report.batches == 5 and report.events == 30
    batches = ledger.query("SELECT batch, first_seq, last_seq, events FROM ingest_batches ORDER BY batch")
    assert batches["events"].tolist() == [7, 7, 7, 7, 2]
    assert batches["first_seq"].tolist() == [1, 8, 15, 22, 29]
    assert ledger.verify().ok


def test_max_batches_stops_early_and_the_rest_follows(home: Path) -> None:
    ledger = _ledger(home, ingest_batch_events=10)
    for i in range(35):
        ledger.append(SessionEnded(reason=str(i)))
    assert ledger.ingest(max_batches=2).events == 20
    assert ledger.ingest().events == 15


def test_columns_come_from_the_hashed_body(home: Path) -> None:
    ledger = _ledger(home)
    ledger.append(SessionEnded(reason="columns"))
    row = ledger.query("SELECT type, version, actor, actor_source, event_time, payload FROM events").iloc[0]
    assert row["type"] == "session_ended" and row["version"] == 1
    assert row["actor"] == ledger.actor.id and row["actor_source"] == ledger.actor.source
    assert '"reason":"columns"' in row["payload"]
    assert str(row["event_time"].tz) == "UTC"


def test_several_writers_keep_their_own_order(home: Path) -> None:
    writers = [_ledger(home) for _ in range(3)]
    for i in range(20):
        for w, ledger in enumerate(writers):
            ledger.append(SessionEnded(reason=f"{w}:{i}"))
    writers[0].ingest()
    rows = writers[0].query("SELECT payload->>'reason' AS r FROM events ORDER BY seq")["r"].tolist()
    assert len(rows) == 60
    for w in range(3):
        mine = [r for r in rows if r.startswith(f"{w}:")]
        assert mine == [f"{w}:{i}" for i in range(20)]


def test_a_corrupt_line_blocks_its_segment_only_and_is_recorded_once(home: Path) -> None:
    good, bad = _ledger(home), _ledger(home)
    for i in range(3):
        good.append(SessionEnded(reason=f"good{i}"))
        bad.append(SessionEnded(reason=f"bad{i}"))
    bad_path = next(p for p in list_segments(home / "spool") if p.stem == bad._writer.segment)
    data = bad_path.read_bytes().replace(b'"bad1"', b'"BAD1"')
    bad_path.write_bytes(data)

    report = good.ingest()
    assert report.events == 3 + 1 + 1  # good ones, bad0, and the rejection record
    (rejection,) = report.rejected
    assert rejection.segment == bad_path.stem and rejection.line == 2
    assert "hash does not match" in rejection.reason

    good.append(SessionEnded(reason="later"))
    again = good.ingest()
    assert again.events == 1 and again.rejected == [] and again.blocked == [rejection]
    reasons = good.query("SELECT payload->>'reason' AS r FROM events WHERE type = 'session_ended'")["r"]
    assert sorted(reasons) == ["bad0", "good0", "good1", "good2", "later"]
    recorded = good.query("SELECT payload->>'segment' AS s, (payload->>'line')::INT AS line "
                          "FROM events WHERE type = 'spool_line_rejected'")
    assert recorded.values.tolist() == [[bad_path.stem, 2]]
    assert good.status().blocked == [rejection]
    assert good.verify().ok


def test_a_well_chained_body_of_an_unknown_type_is_refused(home: Path) -> None:
    ledger = _ledger(home)
    ledger.append(SessionEnded(reason="fine"))
    (path,) = list_segments(home / "spool")
    _append_line(path, _body(f"{path.stem}:2", type="model_trained"))
    _append_line(path, _body(f"{path.stem}:3"))
    other = _ledger(home)
    other.append(SessionEnded(reason="other writer"))

    report = ledger.ingest()
    (rejection,) = report.rejected
    assert (rejection.segment, rejection.line) == (path.stem, 2)
    assert "unknown event type 'model_trained'" in rejection.reason
    reasons = ledger.query("SELECT payload->>'reason' AS r FROM events WHERE type='session_ended'")["r"]
    assert sorted(reasons) == ["fine", "other writer"]
    assert ledger.verify().ok


def test_a_copied_line_with_a_foreign_event_id_is_refused(home: Path) -> None:
    ledger = _ledger(home)
    ledger.append(SessionEnded(reason="fine"))
    (path,) = list_segments(home / "spool")
    _append_line(path, _body("some-other-segment:2"))
    (rejection,) = ledger.ingest().rejected
    assert rejection.line == 2 and "does not belong at this line" in rejection.reason


def test_a_body_only_the_ledger_check_catches_is_refused(home: Path) -> None:
    ledger = _ledger(home)
    ledger.append(SessionEnded(reason="fine"))
    (path,) = list_segments(home / "spool")
    body = _body(f"{path.stem}:2")
    # A duplicated key: a JSON parser keeps one of them, the ledger's check sees both.
    _append_line(path, body[:-1] + b',"v":1}')
    (rejection,) = ledger.ingest().rejected
    assert rejection.line == 2 and "well-formed event envelope" in rejection.reason
    assert ledger.verify().ok


def test_a_segment_truncated_after_ingest_is_reported(home: Path) -> None:
    ledger = _ledger(home)
    for i in range(4):
        ledger.append(SessionEnded(reason=str(i)))
    ledger.ingest()
    (path,) = list_segments(home / "spool")
    path.write_bytes(path.read_bytes()[:100])
    report = ledger.ingest()
    (rejection,) = report.rejected
    assert "shorter" in rejection.reason
    assert ledger.query("SELECT count(*) AS n FROM events WHERE type='session_ended'")["n"][0] == 4


def test_finished_segments_move_to_done(home: Path) -> None:
    ledger = _ledger(home)
    ledger.append(SessionEnded(reason="x"))
    ledger.ingest()
    assert len(list_segments(home / "spool")) == 1  # the writer is still alive
    ledger.close()
    report = _ledger(home).ingest()
    assert report.archived == 1
    assert list_segments(home / "spool") == []
    assert len(list((home / "spool" / "done").glob("*.seg"))) == 1


def test_in_memory_ledger() -> None:
    with Ledger.in_memory() as ledger:
        for i in range(5):
            ledger.append(SessionEnded(reason=str(i)))
        assert ledger.query("SELECT count(*) AS n FROM events")["n"][0] == 5
        assert ledger.verify().ok
        spool = ledger.settings.spool_dir
    assert not spool.exists()


def test_progress_is_reported_for_ingest_and_verify(home: Path) -> None:
    ledger = _ledger(home, ingest_batch_events=10)
    for i in range(35):
        ledger.append(SessionEnded(reason=str(i)))
    (segment,) = list_segments(home / "spool")
    pending = segment.stat().st_size
    seen: list[tuple[int, int]] = []
    ledger.ingest(progress=lambda done, total: seen.append((done, total)))
    assert len(seen) == 4
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert seen[-1] == (pending, pending)
    checked: list[tuple[int, int]] = []
    ledger.verify(progress=lambda done, total: checked.append((done, total)))
    assert checked[-1] == (35, 35)
