"""Review runs: real papermill runs under supervision, with a truthful status for every ending."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import blake3
import nbformat
import pytest

from nbgov.errors import ReviewError
from nbgov.ledger.facade import Ledger
from nbgov.reviews.runs import run_review
from support.helpers import clean_env, review_notebook, run_cli


@pytest.fixture
def notebooks(tmp_path: Path) -> Path:
    folder = tmp_path / "reviews"
    folder.mkdir()
    review_notebook(folder / "ok.ipynb", "%load_ext nbgov", "y = x * 2", "print(label, y)")
    review_notebook(folder / "raises.ipynb", "%load_ext nbgov", "y = x * 2",
                    "raise ValueError(f'bad value {y}')", "never = True")
    review_notebook(folder / "slow.ipynb", "import time", "time.sleep(3600)", "never = True")
    review_notebook(folder / "dies.ipynb", "import os, signal", "os.kill(os.getpid(), signal.SIGKILL)",
                    "never = True")
    review_notebook(folder / "breach.ipynb", "import nbgov",
                    "raise nbgov.PolicyBreach('bias review: DP ratio 0.61 below 0.8')")
    return folder


def _run(home: Path, notebook: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("--home", str(home), "review", "run", str(notebook), *args, timeout=180)


def _finished(home: Path) -> dict[str, object]:
    frame = Ledger(home).query("SELECT * FROM review_runs ORDER BY seq DESC LIMIT 1")
    return {k: None if isinstance(v, float) and v != v else v for k, v in frame.iloc[0].to_dict().items()}


@pytest.mark.slow
def test_each_ending_gets_its_status_exit_code_and_output(notebooks: Path, home: Path) -> None:
    cases = [
        ("ok.ipynb", ("-p", "x", "21", "-p", "label", "answer"), 0, "succeeded", None, None),
        ("raises.ipynb", (), 1, "failed", 4, "ValueError"),
        # The run's timeout counts from before the kernel starts: 30 s leaves a busy machine ample
        # time to start the kernel and reach the sleeping cell (index 3), where it must time out.
        ("slow.ipynb", ("--timeout", "30"), 3, "timed_out", 3, None),
        ("dies.ipynb", (), 4, "kernel_died", 3, None),
    ]
    for name, args, code, status, cell, error in cases:
        result = _run(home, notebooks / name, *args)
        assert result.returncode == code, (name, result.stdout, result.stderr)
        row = _finished(home)
        assert (row["status"], row["error_type"]) == (status, error), (name, row)
        assert row["cell_index"] == cell, (name, row)
        output = Path(str(row["output"]))
        assert output.parent == home / "runs" and output.is_file()
        assert row["output_fingerprint"] == blake3.blake3(output.read_bytes()).hexdigest()
        executed = nbformat.read(output, 4)
        assert executed.cells[0].cell_type == "markdown"  # the whole notebook is kept
        if status == "succeeded":
            assert "answer 42" in json.dumps(executed.cells[-1].outputs)
            assert json.loads(str(row["parameters"])) == {"x": 21, "label": "answer"}
        else:
            assert row["cells_executed"] < row["cells_total"]
    failed = Ledger(home).query("SELECT error_message FROM review_runs WHERE status = 'failed'")
    assert failed["error_message"].iloc[0] == "bad value 2"


@pytest.mark.slow
def test_events_captured_inside_the_run_are_linked_to_it(notebooks: Path, home: Path) -> None:
    Ledger.init(home)
    result = run_review(Ledger(home), notebooks / "ok.ipynb", {"x": "5"})
    assert result.ok and result.cells_executed == result.cells_total == 5  # 4 cells + the injected one
    linked = Ledger(home).query(
        "SELECT type, count(*) AS n FROM events WHERE (session->>'run_id') = $r GROUP BY type ORDER BY type",
        {"r": result.run_id})
    counts = dict(zip(linked["type"], linked["n"]))
    assert counts["review_run_started"] == counts["review_run_finished"] == 1
    assert counts["session_started"] == 1 and counts["cell_executed"] == 2  # the cells after %load_ext


@pytest.mark.parametrize(
    ("cells", "parameters", "message"),
    [
        (None, {"y": "1"}, "unknown parameter(s) 'y'; the notebook's parameters: x, label"),
        (None, {"x": "1.5"}, "parameter 'x' must be int (the notebook's default is 1), not '1.5'"),
        (None, {"x": True}, "parameter 'x' must be int, not bool"),
        ("no-parameters", {}, "has no cell tagged 'parameters'"),
        ("missing", {}, "no notebook at"),
        ("not-a-notebook", {}, "is not a readable notebook"),
    ],
)
def test_bad_input_is_refused_before_anything_is_recorded(tmp_path: Path, home: Path, cells: str | None,
                                                          parameters: dict[str, object], message: str) -> None:
    Ledger.init(home)
    notebook = tmp_path / "review.ipynb"
    if cells is None:
        review_notebook(notebook, "y = x")
    elif cells == "no-parameters":
        review_notebook(notebook, "y = 1")
        nb = nbformat.read(notebook, 4)
        nb.cells[1].metadata["tags"] = []
        nbformat.write(nb, notebook)
    elif cells == "not-a-notebook":
        notebook.write_text("print('hello')")
    with pytest.raises(ReviewError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_review(Ledger(home), notebook, parameters)
    assert Ledger(home).query("SELECT count(*) AS n FROM review_runs")["n"].iloc[0] == 0
    cli = _run(home, notebook, *[item for name, value in parameters.items() for item in ("-p", name, str(value))])
    assert cli.returncode == 1 and cli.stderr.startswith("nbgov: error: ") and len(cli.stderr.splitlines()) == 1


@pytest.mark.slow
def test_a_repeated_trigger_of_the_same_slot_is_a_no_op(notebooks: Path, home: Path) -> None:
    Ledger.init(home)
    slot = ["--job", "nightly", "--scheduled-for", "2026-11-30T06:00:00+00:00"]
    argv = [sys.executable, "-m", "nbgov", "--home", str(home), "review", "run", str(notebooks / "ok.ipynb"), *slot]
    both = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
            for _ in range(2)]
    outputs = [p.communicate(timeout=180) for p in both]
    assert [p.returncode for p in both] == [0, 0]
    assert sum("already started for this schedule slot" in out for out, _ in outputs) == 1
    runs = Ledger(home).query("SELECT job, attempt, status FROM review_runs")
    assert list(runs.itertuples(index=False, name=None)) == [("nightly", 1, "succeeded")]
    retry = _run(home, notebooks / "ok.ipynb", *slot, "--attempt", "2")  # a retry is a new attempt
    assert retry.returncode == 0 and "succeeded" in retry.stdout


@pytest.mark.slow
def test_failures_and_breaches_raise_alerts(notebooks: Path, home: Path, tmp_path: Path) -> None:
    config = tmp_path / "alerts.toml"
    config.write_text(f'[[sinks]]\ntype = "file"\npath = "{tmp_path / "alerts.jsonl"}"\n')
    env = {"NBGOV_ALERTS": str(config)}
    assert run_cli("--home", str(home), "review", "run", str(notebooks / "breach.ipynb"), env=env).returncode == 1
    assert run_cli("--home", str(home), "review", "run", str(notebooks / "raises.ipynb"), env=env).returncode == 1
    lines = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert [line["reason"] for line in lines] == ["policy_breach", "failed"]
    assert "DP ratio 0.61 below 0.8" in lines[0]["message"]
    alerts = Ledger(home).query("SELECT reason, delivered, failing FROM alerts ORDER BY seq")
    assert list(alerts["reason"]) == ["policy_breach", "failed"] and list(alerts["delivered"]) == [1, 1]
