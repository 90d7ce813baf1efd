"""Helpers shared by the tests, imported as ``support.helpers`` (tests/ is on sys.path through pytest's
pythonpath setting)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

TESTS = Path(__file__).parents[1]
WORKERS = TESTS / "workers"
#: Third-party known-answer data kept with the tests, each set beside its LICENSE and README
#: (tests/data/vectors/README.md says where they come from).
VECTORS = TESTS / "data" / "vectors"


def vector_files(*folder: str, pattern: str = "*.json") -> list[Path]:
    """The files matching *pattern* under ``tests/data/vectors/<folder...>``, sorted. They are part
    of the repository: a missing or empty folder is an error, never a reason to skip."""
    where = VECTORS.joinpath(*folder)
    found = sorted(where.rglob(pattern))
    if not found:
        raise FileNotFoundError(f"no {pattern} files under {where}: the test vectors are part of the "
                                f"repository (tests/data/vectors); restore them from version control")
    return found


def clean_env(**extra: str) -> dict[str, str]:
    # NBGOV_KEY_DIR stays: the tests point it at a temporary directory, never ~/.nbgov/keys.
    env = {k: v for k, v in os.environ.items()
           if (not k.startswith("NBGOV_") or k == "NBGOV_KEY_DIR") and k != "JUPYTERHUB_USER"}
    env.update(extra)
    return env


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the installed ``nbgov`` command as a user would."""
    full_env = clean_env(**(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "nbgov", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def invoke_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
               input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``nbgov ARGS`` in this process with click's ``CliRunner``, through the console script's
    own entry point (``nbgov.cli.main.main``: nbgov errors as one line and exit 1, usage errors 2),
    as :func:`run_cli` runs it in a new process: NBGOV_* settings from outside dropped and *env*
    added, *cwd* as the working directory, the warning filters of a fresh interpreter (not the
    suite's), *input* on stdin. The result is a CompletedProcess like run_cli's; an uncaught
    exception gives its traceback on stderr and status 1, as the interpreter would.

    For tests of how the command line maps arguments and options to output, files and errors.
    What depends on the process itself stays with run_cli: a fresh environment or PATH, a real
    kernel, concurrency, signals, a crash, and every command that records events (the CLI leaves
    its spool segment open until the process exits; an in-process run that did so fails here).
    """
    import traceback

    from click.testing import CliRunner

    outside: dict[str, str | None] = {
        name: None for name in os.environ
        if (name.startswith("NBGOV_") and name != "NBGOV_KEY_DIR") or name == "JUPYTERHUB_USER"}
    # The terminal size a process with its output on a pipe gets (shutil's fallback, or COLUMNS).
    terminal = {"COLUMNS": os.environ.get("COLUMNS") or "80", "LINES": os.environ.get("LINES") or "24"}
    spool_before = _open_spool_files()
    previous = os.getcwd()
    with warnings.catch_warnings():  # main() replaces warnings.showwarning: restored on exit
        _fresh_interpreter_warning_filters()
        if cwd is not None:
            os.chdir(cwd)
        try:
            result = CliRunner().invoke(_ConsoleScript("nbgov"), list(args), input=input,
                                        env={**outside, **terminal, **(env or {})}, prog_name="nbgov")
        finally:
            os.chdir(previous)
    left_open = sorted(path for fd, path in _open_spool_files().items() if fd not in spool_before)
    assert not left_open, (f"nbgov {' '.join(args)} recorded events and left {left_open} open in the test "
                           "process: test it with run_cli")
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return subprocess.CompletedProcess(["nbgov", *args], result.exit_code, result.stdout, stderr)


class _ConsoleScript(click.Command):
    """``nbgov.cli.main.main`` in the shape ``CliRunner.invoke`` calls (``main(args=...)``)."""

    def main(self, args: Any = None, prog_name: str | None = None, **extra: Any) -> Any:
        from click import formatting

        from nbgov.cli.main import main

        # CliRunner forces 80 columns on help; a process sizes it to its terminal (COLUMNS, or 80
        # on a pipe), as invoke_cli's environment says.
        forced, formatting.FORCED_WIDTH = formatting.FORCED_WIDTH, None
        try:
            main(list(args or ()))
        finally:
            formatting.FORCED_WIDTH = forced


def _fresh_interpreter_warning_filters() -> None:
    """The warning filters of ``python`` started without -W or PYTHONWARNINGS (the suite's own
    turn NbgovWarning into an error; a user's nbgov prints it as ``nbgov: warning: ...``)."""
    warnings.resetwarnings()
    warnings.filterwarnings("default", category=DeprecationWarning, module="__main__")
    for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
        warnings.filterwarnings("ignore", category=category, append=True)


def _open_spool_files() -> dict[int, str]:
    """The spool segments this process holds open, by descriptor (Linux: /proc/self/fd)."""
    found: dict[int, str] = {}
    try:
        descriptors = os.listdir("/proc/self/fd")
    except FileNotFoundError:
        return found
    for fd in descriptors:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if "/spool/" in target:
            found[int(fd)] = target
    return found


def run_together(commands: list[tuple[list[str], dict[str, Any]]], *, timeout: float = 600
                 ) -> list[subprocess.CompletedProcess[str]]:
    """Run the commands (argv, Popen keyword arguments) at once and wait for all of them. A
    command whose kernel could not bind its port (jupyter_client picks free ports before the
    kernel binds them, so kernels starting together can collide; the kernel never ran) is run
    again, up to twice."""
    results: list[subprocess.CompletedProcess[str] | None] = [None] * len(commands)
    pending = list(range(len(commands)))
    for _attempt in range(3):
        runs = {i: subprocess.Popen(commands[i][0], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, **commands[i][1]) for i in pending}
        pending = []
        for i, run in runs.items():
            out, err = run.communicate(timeout=timeout)
            results[i] = subprocess.CompletedProcess(run.args, run.returncode, out, err)
            if run.returncode != 0 and "Address already in use" in err and "ipykernel" in err:
                pending.append(i)
        if not pending:
            break
    return [r for r in results if r is not None]


def wait_for(condition: Callable[[], object], what: str, *, timeout: float = 300,
             processes: Iterable[subprocess.Popen[str]] = ()) -> None:
    """Poll *condition* until it is true; fail naming *what* only when *timeout* seconds pass (a
    deadline generous enough that a slow, busy machine never reaches it while things work), or at
    once when one of *processes* has exited (it can then never happen)."""
    deadline = time.monotonic() + timeout
    watched = list(processes)
    while not condition():
        for process in watched:
            if process.poll() is not None:
                err = process.stderr.read() if process.stderr is not None else ""
                raise AssertionError(f"waiting for {what}: {process.args} exited with {process.returncode}"
                                     f"\n{err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"waiting for {what}: still not the case after {timeout:g} s")
        time.sleep(0.05)


def progress(path: Path) -> int:
    """The count a worker writes (replaced whole) to *path* as it goes; 0 before the first."""
    try:
        return int(path.read_text() or 0)
    except FileNotFoundError:
        return 0


def sample_ledger(home: Path) -> Path:
    """A small ledger recorded through the API: ledger_created + 9 events of a short session
    (session_started, 4 cell_executed, dataset_read, model_fitted, metrics_logged, session_ended)."""
    from nbgov import events
    from nbgov.ledger import envelope
    from nbgov.ledger.facade import Ledger

    ledger = Ledger.init(home)
    session = envelope.Session(session_id="sample", notebook="loans.ipynb")
    ledger.append(events.SessionStarted(host="host", python="3.11"), session=session)
    for n in range(1, 5):
        cell = envelope.Session(session_id="sample", notebook="loans.ipynb", cell_run=f"cell:sample:{n}")
        if n == 1:
            ledger.append(events.DatasetRead(path="loans.csv", fingerprint="ab" * 32, algorithm="blake3",
                                             coverage="file", rows=40, node="cell:sample:1",
                                             inputs=["dataset:" + "ab" * 32]), session=cell)
        if n == 3:
            ledger.append(events.ModelFitted(node="model:loans@1", model="loans", version=1,
                                             estimator="sklearn.linear_model.LogisticRegression",
                                             params={"C": 1.0}, inputs=["dataset:" + "ab" * 32]), session=cell)
        if n == 4:
            ledger.append(events.MetricsLogged(metrics={"accuracy": 0.825}, model="loans", version=1),
                          session=cell)
        ledger.append(events.CellExecuted(node=f"cell:sample:{n}", cell_id=f"c{n}", execution_count=n,
                                          source_sha256="cd" * 32, source=f"step {n}",
                                          started_at="2026-01-01T00:00:00.000000Z", duration_us=10 * n,
                                          ok=True), session=cell)
    ledger.append(events.SessionEnded(reason="done", cells=4), session=session)
    ledger.ingest()
    ledger.close()
    return home


# --- governance fixtures -----------------------------------------------------------------------

#: A policy for governance tests: low default tier (no risk register needed unless a test sets a
#: tier), a bias test over "race" required, roc_auc at least 0.7.
TEST_POLICY = """\
default_tier = "low"
[fairness]
sensitive_features = ["race"]
max_demographic_parity_difference = 0.1
min_demographic_parity_ratio = 0.8
max_equalized_odds_difference = 0.2
[metrics]
minimum = { roc_auc = 0.7 }
[tiers.high]
review_every_days = 30
risk_categories = ["bias", "drift", "unauthorized_data_access", "vendor", "misuse"]
approvals = 2
[tiers.medium]
review_every_days = 90
risk_categories = ["bias", "drift"]
[tiers.low]
review_every_days = 365
"""


def as_user(home: Path, who: str):  # type: ignore[no-untyped-def]
    """The ledger at *home*, acting as *who*."""
    from nbgov.identity import Actor
    from nbgov.ledger.facade import Ledger

    return Ledger(home, actor=Actor(who, "configured"))


def write_policy(directory: Path, text: str = TEST_POLICY):  # type: ignore[no-untyped-def]
    from nbgov.governance.policy import load_policy

    path = directory / "nbgov-policy.toml"
    path.write_text(text)
    return load_policy(path)


def train_version(home: Path, data: Path, *, author: str = "ana", model: str = "credit", version: int = 1,
                  roc_auc: float = 0.9, declare: bool = True, session: str = "s1") -> str:
    """Record, as *author*, a model version trained on the file *data* (read, declared, fitted,
    evaluated); return ``model@version``."""
    from nbgov import events
    from nbgov.fingerprint import fingerprint_file
    from nbgov.ledger import envelope

    ledger = as_user(home, author)
    print_ = fingerprint_file(data)
    node = f"dataset:{print_.digest}"
    cell = f"cell:{session}:{version}"
    ledger.append(events.DatasetRead(path=str(data), fingerprint=print_.digest, algorithm="blake3",
                                     coverage="file", node=cell, inputs=[node]),
                  session=envelope.Session(session_id=session, cell_run=cell))
    if declare:
        ledger.append(events.DatasetDeclared(path=str(data), fingerprint=print_.digest, algorithm="blake3",
                                             node=node, source="bank core system", license="internal",
                                             owner="credit-data"))
    ledger.append(events.ModelFitted(node=f"model:{model}@{version}", model=model, version=version,
                                     estimator="sklearn.linear_model.LogisticRegression", params={},
                                     model_fingerprint="f" * 64, inputs=[node]),
                  session=envelope.Session(session_id=session, cell_run=cell))
    ledger.append(events.MetricsLogged(metrics={"roc_auc": roc_auc}, model=model, version=version))
    ledger.ingest()
    return f"{model}@{version}"


def bias_test(home: Path, ref: str, *, gap: bool, author: str = "ana", policy=None):  # type: ignore[no-untyped-def]
    """Record a bias test of *ref* over "race": 60/100 vs 40/100 selected (*gap*) or 50 vs 50."""
    import pandas as pd

    from nbgov.api import fairness
    from nbgov.capture.recorder import Recorder, activate, deactivate

    race = pd.Series(["a"] * 100 + ["b"] * 100, name="race")
    y_true = [1, 0] * 100
    if gap:
        y_pred = [1] * 60 + [0] * 40 + [1] * 40 + [0] * 60
    else:
        y_pred = list(y_true)
    recorder = Recorder(as_user(home, author), flush_interval=0)
    activate(recorder)
    try:
        result = fairness(y_true, y_pred, race, model=ref, policy=policy)
    finally:
        deactivate(recorder)
    recorder.ledger.ingest()
    return result


def governed_ledger(tmp_path: Path, approvers: tuple[str, ...] = ("rita",)) -> tuple[Path, Path]:
    """A governed ledger under *tmp_path*: ana trained credit@1 on a small file and ran a passing
    bias test; ines (admin) made each of *approvers* an approver. Returns (ledger home, policy
    file), e.g. for NBGOV_HOME and NBGOV_POLICY."""
    from nbgov.governance.registry import grant_role
    from nbgov.ledger.facade import Ledger

    home = tmp_path / "ledger"
    Ledger.init(home)
    policy = write_policy(tmp_path)
    data = tmp_path / "loans.csv"
    data.write_text("income,default\n1,0\n2,1\n")
    ref = train_version(home, data)
    bias_test(home, ref, gap=False, policy=policy)
    admin = as_user(home, "ines")
    grant_role(admin, "ines", "admin")
    for approver in approvers:
        grant_role(admin, approver, "approver")
    return home, Path(policy.source)


def review_notebook(path: Path, *cells: str, parameters: str = "x = 1\nlabel = 'a'") -> Path:
    """A small notebook with a ``parameters`` cell followed by *cells* (markdown first, like a
    real review)."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    params = new_code_cell(parameters)
    params.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[new_markdown_cell("# review"), params, *[new_code_cell(c) for c in cells]],
                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                               "language": "python"}})
    nbformat.write(nb, path)
    return path


def rewrite_history(home: Path, edit, *, keep_up_to: int | None = None) -> None:  # type: ignore[no-untyped-def]
    """Forge a ledger consistently, as someone with write access to its DuckDB file could:
    optionally drop every event after ``keep_up_to`` (with their batches and subtrees), pass each
    remaining body through ``edit(seq, body) -> body``, then recompute every leaf, chain hash,
    batch head and the whole Merkle tree, so that everything inside the file agrees again."""
    import duckdb

    from nbgov.ledger.envelope import format_time
    from nbgov.ledger.integrity.chain import GENESIS, chain_hash, leaf_hash
    from nbgov.ledger.integrity.tree_store import backfill

    con = duckdb.connect(str(home / "ledger.duckdb"))
    try:
        if keep_up_to is not None:
            con.execute(f"DELETE FROM event_log WHERE seq > {keep_up_to}")
            con.execute(f"DELETE FROM ingest_batches WHERE first_seq > {keep_up_to}")
        rows = con.execute("SELECT seq, body, epoch_us(ingested_at) FROM event_log ORDER BY seq").fetchall()
        chain, fixed = GENESIS, []
        for seq, body, micros in rows:
            body = edit(seq, bytes(body))
            leaf = leaf_hash(body, format_time(micros * 1000), seq)
            chain = chain_hash(chain, leaf)
            fixed.append((seq, body, leaf, chain))
        con.execute("CREATE TEMP TABLE fixed (seq BIGINT, body BLOB, leaf BLOB, chain BLOB)")
        con.executemany("INSERT INTO fixed VALUES (?, ?, ?, ?)", fixed)
        con.execute("UPDATE event_log SET body = f.body, leaf_hash = f.leaf, chain_hash = f.chain "
                    "FROM fixed f WHERE f.seq = event_log.seq")
        con.execute("UPDATE ingest_batches SET head_chain = f.chain FROM fixed f "
                    "WHERE f.seq = ingest_batches.last_seq")
        con.execute("DELETE FROM merkle_nodes")
        backfill(con)
    finally:
        con.close()


@contextmanager
def isolated_module_environment(base: Path) -> Iterator[None]:
    """For module-scoped fixtures (which the autouse per-test isolation does not cover): no
    NBGOV_* / JupyterHub settings, signing keys under *base*, *base* as the working directory."""
    import pytest

    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("NBGOV_") or name == "JUPYTERHUB_USER":
                patch.delenv(name)
        patch.setenv("NBGOV_KEY_DIR", str(base / "keys"))
        patch.chdir(base)
        yield
