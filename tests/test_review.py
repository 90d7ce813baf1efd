"""Review runs: real papermill runs under supervision, with a truthful status for every ending."""

from __future__ import annotations

import base64
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
from support.helpers import clean_env, invoke_cli, review_notebook, run_cli


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
    # Values are given to the notebook unchanged (papermill's semantics): 5, not the text "5", which
    # nbgov once converted to the default's type and now refuses.
    result = run_review(Ledger(home), notebooks / "ok.ipynb", {"x": 5})
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
        (None, {"y": 1}, "unknown parameter(s) 'y'; the notebook's parameters: x, label"),
        (None, {"x": 1.5}, "parameter 'x' must be int (the notebook's default is 1), not float 1.5"),
        (None, {"x": True}, "parameter 'x' must be int (the notebook's default is 1), not bool True"),
        # Text is never converted to the default's type any more (nbgov once made "5" the int 5):
        # -r gives text, and text is refused for an int.
        (None, {"x": "5"}, "parameter 'x' must be int (the notebook's default is 1), not str '5'"),
        (None, {"label": 7}, "parameter 'label' must be str (the notebook's default is 'a'), not int 7 "
                             "(as in papermill, -p reads numbers, True, False and None; -r NAME VALUE gives text)"),
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
    # the same values on the command line: -r for text, -p (papermill's reading) for the rest
    cli = _run(home, notebook, *[item for name, value in parameters.items()
                                 for item in ("-r" if isinstance(value, str) else "-p", name, str(value))])
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


# -- parameters: papermill's command line, nbgov's checks ------------------------------------------

PARITY_PARAMETERS = """flag = None
name = None
x = 0.0
big = 0
n = None
a = None
when = None
text = None"""
PARAMS_YAML = "a: {k: v, list: [1, 2.5]}\nwhen: 2026-01-01\nflag: yes\nname: '007'\n"
BASE64_YAML = base64.b64encode(b"a: [x, {y: 1.5}]\nn: null\nname: from -b\n").decode()


def _parity_cases(params_file: Path) -> list[tuple[list[str], str | None]]:
    """(arguments, a line the injected cell must hold, showing papermill's reading)."""
    file = str(params_file)
    return [
        (["-p", "flag", "true"], "flag = \"true\""),                    # only True/False are booleans
        (["-p", "name", "007"], "name = 7"),                              # int("007")
        (["-p", "x", "3.5", "-p", "big", "1_000"], "big = 1000"),
        (["-p", "n", "None"], "n = None"),
        (["-r", "name", "007"], "name = \"007\""),
        (["-y", "a: [1, 2]"], "a = [1, 2]"),
        (["-f", file], "when = \"2026-01-01\""),                         # no dates: the text stays
        (["-b", BASE64_YAML], "n = None"),
        # papermill's order whatever the position: -b < -f < -y < -p < -r, and the later of a kind
        (["-r", "name", "raw wins", "-p", "name", "5", "-y", "name: y\nx: 2.5", "-f", file, "-b", BASE64_YAML,
          "-p", "x", "1", "-p", "x", "4.25"], "name = \"raw wins\""),
        (["-p", "text", "it's \"quoted\"\nline 2", "-r", "name", "tab\there 'q'", "-y", "a: \"multi\\nline\"\n"],
         None),
    ]


def _injected(notebook: Path) -> list[str]:
    return [cell.source for cell in nbformat.read(notebook, 4).cells
            if "injected-parameters" in cell.metadata.get("tags", [])]


@pytest.mark.slow
def test_papermill_and_review_run_inject_identical_parameters(tmp_path: Path) -> None:
    """The proof: `python -m papermill IN OUT ARGS` and `nbgov review run IN ARGS` inject the same
    parameters cell for the same -p/-r/-y/-f/-b arguments, in ten cases."""
    notebook = review_notebook(tmp_path / "in.ipynb", "print(flag, name, x, big, n, a, when, text)",
                               parameters=PARITY_PARAMETERS)
    params_file = tmp_path / "params.yaml"
    params_file.write_text(PARAMS_YAML)
    cases = _parity_cases(params_file)
    assert len(cases) == 10
    for index, (args, expected) in enumerate(cases):
        out = tmp_path / f"papermill-{index}.ipynb"
        home = tmp_path / f"home-{index}"
        by_papermill = subprocess.Popen([sys.executable, "-m", "papermill", str(notebook), str(out), *args],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        env=clean_env())
        by_nbgov = _run(home, notebook, *args)
        log = by_papermill.communicate(timeout=180)[0]
        assert by_papermill.returncode == 0, (args, log)
        assert by_nbgov.returncode == 0, (args, by_nbgov.stdout, by_nbgov.stderr)
        executed = list((home / "runs").glob("*.ipynb"))
        assert len(executed) == 1, executed
        papermill_cell, nbgov_cell = _injected(out), _injected(executed[0])
        assert len(papermill_cell) == 1 and nbgov_cell == papermill_cell, (args, papermill_cell, nbgov_cell)
        if expected is not None:
            assert expected in papermill_cell[0].splitlines(), (args, papermill_cell[0])


def _papermill_cli_parameters(args: list[str], notebook: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """The parameters papermill's own command builds from *args* (its execution replaced)."""
    import papermill.cli
    from click.testing import CliRunner

    captured: dict[str, object] = {}
    monkeypatch.setattr(papermill.cli, "execute_notebook",
                        lambda **kwargs: captured.update(kwargs["parameters"]))
    result = CliRunner().invoke(papermill.cli.papermill, [str(notebook), "out.ipynb", *args])
    assert result.exit_code == 0, (args, result.output, result.exception)
    return captured


def _options(args: list[str]) -> dict[str, list[object]]:
    """Sort a command line into nbgov's papermill_parameters arguments (as click does)."""
    found: dict[str, list[object]] = {"typed": [], "raw": [], "yaml_texts": [], "files": [], "base64_texts": []}
    rest = list(args)
    while rest:
        flag = rest.pop(0)
        if flag in ("-p", "-r"):
            found["typed" if flag == "-p" else "raw"].append((rest.pop(0), rest.pop(0)))
        else:
            found[{"-y": "yaml_texts", "-f": "files", "-b": "base64_texts"}[flag]].append(rest.pop(0))
    return found


def test_parameter_values_and_precedence_are_papermills_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hypothesis import given
    from hypothesis import strategies as st

    from nbgov.reviews.parameters import papermill_parameters
    from nbgov.reviews.schedules import same_values

    notebook = review_notebook(tmp_path / "in.ipynb", parameters=PARITY_PARAMETERS)
    params_file = tmp_path / "params.yaml"
    params_file.write_text(PARAMS_YAML)
    names = st.sampled_from(["flag", "name", "x", "n"])
    texts = st.one_of(st.sampled_from(["True", "true", "False", "None", "007", "1_000", " 12 ", "3.5", "1e3",
                                       "nan", "-inf", "0x1F", "", "yes", "{{ 7*7 }}", "a\nb", "it's"]),
                      st.text(max_size=8))
    option = st.one_of(
        st.tuples(st.sampled_from(["-p", "-r"]), names, texts).map(list),
        st.tuples(st.just("-y"), st.dictionaries(names, st.one_of(st.integers(), st.booleans(), st.none(),
                                                                   st.text(max_size=6)), max_size=3)
                  .map(lambda d: __import__("yaml").safe_dump(d))).map(list),
        st.just(["-f", str(params_file)]),
        st.just(["-b", BASE64_YAML]),
    )

    @given(st.lists(option, max_size=6))
    def check(options: list[list[str]]) -> None:
        args = [part for chosen in options for part in chosen]
        expected = _papermill_cli_parameters(args, notebook, monkeypatch)
        got = papermill_parameters(**_options(args))  # type: ignore[arg-type]
        assert list(got) == list(expected) and all(
            same_values(got[k], expected[k]) or (got[k] != got[k] and expected[k] != expected[k]) for k in got), (
            args, got, expected)

    check()


TYPED_PARAMETERS = """i = 1
f = 1.5
b = False
s = "a"
l = [1]
d = {"k": 1}
n = None
e = len("x")
af: float = 1
ao: Optional[int] = None
au: Union[int, str] = 0
ac = 1  # type: float
ax: Timestamp = None"""


@pytest.mark.parametrize(("name", "accepted", "refused"), [
    ("i", [7, -1], [True, 3.0, None, "7"]),
    ("f", [1, 1.5, float("nan")], [True, None, "1.5"]),
    ("b", [True, False], ["true", 1, None]),
    ("s", ["x", ""], [7, 7.0, True, None]),
    ("l", [[], [1, "a"]], [{}, "[1]", None]),
    ("d", [{}, {"a": [1]}], [[], "{}", None]),
    ("n", [None, 1, "x", [1], {"a": 1}], []),       # a None default accepts anything
    ("e", [None, 1, "x"], []),                      # an expression: anything
    ("af", [1, 2.5], [True, "1"]),                  # the annotation rules, not the default
    ("ao", [None, 3], [3.5, "3"]),
    ("au", [1, "x"], [1.5, None]),
    ("ac", [1, 1.5], ["1"]),                        # a type comment counts as an annotation
    ("ax", [None, "2026-01-01", 1], []),            # an annotation nbgov does not read: anything
])
def test_a_value_must_match_the_parameters_type_and_is_never_converted(
        tmp_path: Path, name: str, accepted: list[object], refused: list[object]) -> None:
    from nbgov.reviews.parameters import check_parameters, notebook_parameters

    declared = notebook_parameters(review_notebook(tmp_path / "typed.ipynb", parameters=TYPED_PARAMETERS))
    for value in accepted:
        assert check_parameters(declared, {name: value})[name] is value
    for value in refused:
        with pytest.raises(ReviewError, match=f"parameter '{name}' must be ") as refusal:
            check_parameters(declared, {name: value})
        assert "\n" not in refusal.value.one_line()


def test_bad_parameter_options_are_one_line_errors(tmp_path: Path) -> None:
    notebook = review_notebook(tmp_path / "review.ipynb", "y = x")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    home = tmp_path / "ledger"
    for args, message in [
        (["-y", "x: [1"], "-y 'x: [1': not YAML (expected ',' or ']', but got '<stream end>' at line 1, column 6)"),
        (["-y", "[1, 2]"], "-y '[1, 2]': parameters must be a YAML mapping (name: value), not list"),
        (["-f", str(tmp_path / "missing.yaml")], "cannot be read (No such file or directory)"),
        (["-f", str(tmp_path / "list.yaml")], "parameters must be a YAML mapping (name: value), not list"),
        (["-b", "abc"], "-b 'abc': not base64 (Incorrect padding)"),
        (["-p", "flag", "true"], "unknown parameter(s) 'flag'; the notebook's parameters: x, label"),
        (["-p", "x", "true"], "parameter 'x' must be int (the notebook's default is 1), not str 'true'"),
    ]:
        result = invoke_cli("--home", str(home), "review", "run", str(notebook), *args)
        assert result.returncode == 1, (args, result.stdout)
        assert result.stderr.splitlines() == [f"nbgov: error: {message}"] or (
            len(result.stderr.splitlines()) == 1 and message in result.stderr), (args, result.stderr)
    assert not (home / "runs").exists() or not list((home / "runs").glob("*.ipynb"))
