"""The spool: per-process segments, chained lines, checks on read."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from nbgov.errors import InvalidPayload
from nbgov.events import Correction, SessionEnded
from nbgov.identity import Actor
from nbgov.ledger.spool import SegmentCursor, SpoolWriter, list_segments, read_segment, writer_alive

ACTOR = Actor("ana", "os")


def _writer(tmp_path: Path) -> SpoolWriter:
    return SpoolWriter(tmp_path / "spool", ACTOR)


def _read_all(path: Path):
    return read_segment(path, SegmentCursor(), max_bytes=1 << 20, max_lines=10**6)


def test_append_creates_a_private_segment_with_chained_lines(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    ids = [writer.append(SessionEnded(reason=f"r{i}")) for i in range(3)]
    (path,) = list_segments(tmp_path / "spool")
    assert ids == [f"{path.stem}:{n}" for n in (1, 2, 3)]
    assert stat.S_IMODE(os.stat(tmp_path / "spool").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    lines = path.read_bytes().splitlines()
    assert len(lines) == 3
    fields = [line.split(b"\t") for line in lines]
    assert [f[0] for f in fields] == [b"nbgov1"] * 3
    assert fields[0][2] == b"0" * 64
    assert fields[1][2] == fields[0][4] and fields[2][2] == fields[1][4]
    read = _read_all(path)
    assert len(read) == 3 and read.rejection is None
    assert read.end.lines == 3 and read.end.offset == path.stat().st_size


def test_bad_payload_writes_nothing(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    writer.append(SessionEnded(reason="ok"))
    (path,) = list_segments(tmp_path / "spool")
    size = path.stat().st_size
    with pytest.raises(InvalidPayload):
        writer.append(Correction(corrects="x", reason="y", changes={"v": float("nan")}))
    assert path.stat().st_size == size
    assert writer.append(SessionEnded(reason="still fine")).endswith(":2")


def test_the_writer_holds_a_lock_for_its_life(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    writer.append(SessionEnded(reason="x"))
    (path,) = list_segments(tmp_path / "spool")
    assert writer_alive(path)
    writer.close()
    assert not writer_alive(path)


def test_a_forked_child_gets_its_own_segment(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    writer.append(SessionEnded(reason="parent"))
    pid = os.fork()
    if pid == 0:  # child
        try:
            writer.append(SessionEnded(reason="child"))
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    writer.append(SessionEnded(reason="parent again"))
    segments = list_segments(tmp_path / "spool")
    assert len(segments) == 2
    counts = sorted(len(_read_all(p)) for p in segments)
    assert counts == [1, 2]
    assert all(_read_all(p).rejection is None for p in segments)


def test_a_torn_last_line_is_left_for_later(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    for i in range(2):
        writer.append(SessionEnded(reason=str(i)))
    (path,) = list_segments(tmp_path / "spool")
    with open(path, "ab") as fh:
        fh.write(b"nbgov1\t3\tpartial")
    read = _read_all(path)
    assert len(read) == 2 and read.rejection is None


@pytest.mark.parametrize(
    ("mutate", "line", "fragment"),
    [
        (lambda lines: lines.__setitem__(1, lines[1].replace(b'"r1"', b'"rX"')), 2, "hash does not match"),
        (lambda lines: lines.pop(1), 2, "line number 3 where 2"),
        (lambda lines: lines.insert(0, lines.pop(1)), 1, "line number 2 where 1"),
        (lambda lines: lines.__setitem__(2, b"garbage"), 3, "not in the nbgov spool format"),
    ],
)
def test_altered_lines_are_refused_at_the_right_line(tmp_path: Path, mutate, line: int, fragment: str) -> None:
    writer = _writer(tmp_path)
    for i in range(4):
        writer.append(SessionEnded(reason=f"r{i}"))
    (path,) = list_segments(tmp_path / "spool")
    lines = path.read_bytes().splitlines()
    mutate(lines)
    path.write_bytes(b"\n".join(lines) + b"\n")
    read = _read_all(path)
    assert read.rejection is not None
    assert read.rejection.line == line
    assert fragment in read.rejection.reason
    assert len(read) == line - 1


def test_a_rehashed_edit_breaks_the_next_link(tmp_path: Path) -> None:
    from hashlib import sha256

    writer = _writer(tmp_path)
    for i in range(3):
        writer.append(SessionEnded(reason=f"r{i}"))
    (path,) = list_segments(tmp_path / "spool")
    lines = path.read_bytes().splitlines()
    content = lines[0].rsplit(b"\t", 1)[0].replace(b'"r0"', b'"rX"')
    lines[0] = content + b"\t" + sha256(content).hexdigest().encode()
    path.write_bytes(b"\n".join(lines) + b"\n")
    read = _read_all(path)
    assert read.rejection is not None and read.rejection.line == 2
    assert "does not chain" in read.rejection.reason


def test_write_all_writes_everything_and_reports_errors(tmp_path: Path) -> None:
    import errno

    from nbgov.ledger.spool import write_all

    path = tmp_path / "f"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    write_all(fd, b"a" * 100_000)
    write_all(fd, b"tail\n")
    os.close(fd)
    assert path.read_bytes() == b"a" * 100_000 + b"tail\n"
    with pytest.raises(OSError) as closed:
        write_all(fd, b"x")
    assert closed.value.errno == errno.EBADF
    if os.path.exists("/dev/full"):
        full = os.open("/dev/full", os.O_WRONLY)
        try:
            with pytest.raises(OSError) as no_space:
                write_all(full, b"x")
            assert no_space.value.errno == errno.ENOSPC
        finally:
            os.close(full)


def test_a_failed_write_abandons_the_segment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbgov.ledger.spool as spool
    from nbgov.errors import SpoolError

    writer = _writer(tmp_path)
    writer.append(SessionEnded(reason="before"))
    first = writer.segment

    def failing(fd: int, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(spool, "write_all", failing)
    with pytest.raises(SpoolError, match="No space left"):
        writer.append(SessionEnded(reason="lost"))
    monkeypatch.undo()
    writer.append(SessionEnded(reason="after"))
    assert writer.segment != first  # never appends after a possibly partial line
