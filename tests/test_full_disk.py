"""A full disk: capture counts what it could not record and says so in the ledger once it can;
no empty segment is left behind; queries answer from what the ledger holds meanwhile.

The ledger's home is a small tmpfs of its own (a private mount namespace, as root or with user
namespaces), filled by the notebook itself mid-run. 8 MiB rather than less: a fresh ledger with
its read snapshot already takes about 3 MiB.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from support.helpers import clean_env

SIZE = "8m"
FULL_CELLS = ("a = 1", "b = a + 1", "c = b + 1")


@pytest.fixture
def tmpfs_mounts_work(tmp_path: Path) -> None:
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to mount a private tmpfs")
    probe = tmp_path / "probe"
    probe.mkdir()
    result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                             'mount -t tmpfs -o size=1m tmpfs "$1" && touch "$1/x"', "sh", str(probe)],
                            capture_output=True)
    if result.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root or user namespaces)")


QUERY = ("import subprocess, sys\n"
         "def nbgov(*args):\n"
         "    done = subprocess.run([sys.executable, '-m', 'nbgov', *args], capture_output=True, text=True)\n"
         "    return {'rc': done.returncode, 'out': done.stdout, 'err': done.stderr}\n"
         "print(json.dumps({'sql': nbgov('sql', '--format', 'csv', "
         "\"SELECT count(*) AS n FROM events WHERE type = 'session_started'\"), "
         "'verify': nbgov('verify'), 'status': nbgov('status')}))")


def _notebook(path: Path, home: Path) -> Path:
    cells = [
        "%load_ext nbgov",
        "import json, os, warnings\nwarnings.simplefilter('always')",
        "%nbgov flush",  # the session's start is in the ledger before the disk fills
        # Fill the disk: the next events have nowhere to go.
        f"filler = open({str(home / 'filler')!r}, 'wb', buffering=0)\n"
        "for size in (65536, 4096, 256, 16, 1):  # to the last byte\n"
        "    try:\n        while True:\n            filler.write(b'x' * size)\n            filler.flush()\n"
        "    except OSError:\n        filler = open(filler.name, 'ab', buffering=0)\n"
        "filler.close()",
        *FULL_CELLS,
        QUERY,
        f"os.remove({str(home / 'filler')!r})",
        "d = c + 1",
    ]
    nbformat.write(new_notebook(cells=[new_code_cell(c) for c in cells], metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}), path)
    return path


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_full_disk_is_counted_recorded_later_and_leaves_no_empty_segment(
        tmpfs_mounts_work: None, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    notebook = _notebook(tmp_path / "fill.ipynb", home)
    out = tmp_path / "out.ipynb"
    report = tmp_path / "report.json"
    # Everything that needs the tmpfs runs inside the namespace; what the test checks is copied out
    # as JSON (the mount, and the ledger on it, go away with the namespace).
    check = (
        "import json, os, sys\n"
        "from pathlib import Path\n"
        "from nbgov.ledger.facade import Ledger\n"
        "home = Path(sys.argv[1])\n"
        "ledger = Ledger(home)\n"
        "rows = ledger.rows(\"SELECT type, payload->>'hook' AS hook, (payload->>'events_lost')::INT AS lost "
        "FROM events WHERE type IN ('capture_failed', 'session_ended') ORDER BY seq\")\n"
        "cells = ledger.rows(\"SELECT source FROM cells ORDER BY seq\")\n"
        "spool = home / 'spool'\n"
        "sizes = {p.name: p.stat().st_size for p in spool.glob('*.seg')} | "
        "{'done/' + p.name: p.stat().st_size for p in (spool / 'done').glob('*.seg')}\n"
        "json.dump({'events': rows, 'cells': [c['source'] for c in cells], 'segments': sizes}, "
        "open(sys.argv[2], 'w'))\n"
    )
    script = ('mount -t tmpfs -o size=$SIZE tmpfs "$HOME_DIR" && '
              '"$PY" -m nbgov --home "$HOME_DIR/ledger" init >/dev/null && '
              '"$PY" -m papermill "$NB" "$OUT" -k python3 --no-progress-bar; rc=$?; '
              '"$PY" -m nbgov --home "$HOME_DIR/ledger" ingest >/dev/null; '
              '"$PY" -c "$CHECK" "$HOME_DIR/ledger" "$REPORT"; exit $rc')
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script], capture_output=True,
        text=True, timeout=500,
        env=clean_env(SIZE=SIZE, HOME_DIR=str(home), PY=sys.executable, NB=str(notebook), OUT=str(out),
                      CHECK=check, REPORT=str(report), NBGOV_HOME=str(home / "ledger"),
                      NBGOV_NOTEBOOK=str(notebook)))
    assert result.returncode == 0, result.stderr[-3000:]  # the notebook completed
    found = json.loads(report.read_text())

    # The cells run while the disk was full are missing (the first may still fit in the slack of
    # the spool file's last page); the ledger says exactly how many events are: one per cell
    # missing, as those cells record nothing else.
    attempted = [*FULL_CELLS, QUERY]
    missing = [cell for cell in attempted if cell not in found["cells"]]
    assert len(missing) >= 2, found["cells"]
    assert "d = c + 1" in found["cells"]
    failures = [e for e in found["events"] if e["type"] == "capture_failed"]
    assert [(f["hook"], f["lost"]) for f in failures] == [("spool", len(missing))]
    assert found["events"][-1]["type"] == "session_ended"
    assert all(size > 0 for size in found["segments"].values()), found["segments"]

    # nbgov sql answered while the disk was full, from what the ledger held, with a warning.
    executed = nbformat.read(out, as_version=4)
    printed = next(o["text"] for c in executed.cells if c.cell_type == "code" for o in c.outputs
                   if o.get("name") == "stdout" and '"rc"' in o.get("text", ""))
    answers = json.loads(printed)
    query = answers["sql"]
    assert query["rc"] == 0, query["err"]
    assert query["out"].splitlines() == ["n", "1"]
    if query["err"]:  # lines were pending (cells recorded before the disk filled): said in one line
        assert query["err"].startswith("nbgov: warning: could not ingest pending spool lines"), query["err"]
        assert query["err"].count("\n") == 1, query["err"]
    assert answers["verify"]["rc"] == 0, answers["verify"]
    assert answers["status"]["rc"] == 0, answers["status"]
    assert "sessions    1 open" in answers["status"]["out"]
    warnings_shown = [o["text"] for c in executed.cells for o in c.outputs if o.get("name") == "stderr"]
    assert any("nbgov could not record an event" in text for text in warnings_shown), warnings_shown
    assert not any("This is recorded in the ledger" in text for text in warnings_shown)
