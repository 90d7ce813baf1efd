"""Review runs: a parameterised notebook executed by papermill under nbgov's supervision.

papermill executes; nbgov supervises. The run's status comes from what nbgov saw happen, cell by
cell (nbclient's hooks in this process) and from its own watchdog, never from the output
notebook's metadata (after a timeout or a dead kernel papermill marks unexecuted cells
"completed"):

* ``succeeded``: every code cell ran without an error;
* ``failed``: a cell raised (its index in the input notebook, the error's type and message), or
  the kernel could not start;
* ``timed_out``: the run's ``timeout`` passed; the watchdog killed the kernel;
* ``kernel_died``: the kernel process ended on its own.

Parameters are checked against the notebook's ``parameters`` cell before anything is launched or
recorded, and given to papermill unchanged (:mod:`nbgov.reviews.parameters`: papermill's
command-line semantics, nbgov's checks). The run records ``review_run_started`` and
``review_run_finished``; its kernel is told the run id (``NBGOV_RUN_ID``), so every event
captured inside the run carries ``session.run_id``. The executed notebook is kept under
``<home>/runs/`` and fingerprinted.

A scheduled run names its ``job``, ``scheduled_for`` and ``attempt``: such a run is claimed under
a lock, so a duplicate trigger of the same attempt is a no-op.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat

from nbgov.errors import NbgovError, ReviewError
from nbgov.events import ReviewRunFinished, ReviewRunStarted
from nbgov.fingerprint import fingerprint_file
from nbgov.identity import hostname
from nbgov.ledger.envelope import Session
from nbgov.reviews.execution import environment_variables
from nbgov.reviews.parameters import Parameter, check_parameters, notebook_parameters

if TYPE_CHECKING:
    from nbgov.alerts.sinks import LoadedAlerts
    from nbgov.ledger.facade import Ledger

__all__ = [
    "EXIT_CODES",
    "Parameter",
    "ReviewResult",
    "claims_lock",
    "notebook_parameters",
    "run_review",
]

SUCCEEDED, FAILED, TIMED_OUT, KERNEL_DIED = "succeeded", "failed", "timed_out", "kernel_died"
#: Exit status of ``nbgov review run`` per outcome (a duplicate trigger exits 0).
EXIT_CODES = {SUCCEEDED: 0, FAILED: 1, TIMED_OUT: 3, KERNEL_DIED: 4}
#: Errors that mean "the policy is breached" rather than "the notebook broke".
POLICY_BREACHES = frozenset({"CheckFailed", "PolicyBreach"})

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ReviewResult:
    """The outcome of one review run."""

    run_id: str
    status: str
    notebook: Path
    output: Path | None
    output_fingerprint: str | None = None
    cells_total: int = 0
    cells_executed: int = 0
    cell_index: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    seconds: float = 0.0
    duplicate: bool = False
    parameters: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == SUCCEEDED

    @property
    def exit_code(self) -> int:
        return 0 if self.duplicate else EXIT_CODES[self.status]

    @property
    def policy_breach(self) -> bool:
        return self.error_type in POLICY_BREACHES

    def describe(self) -> str:
        if self.duplicate:
            return f"{self.notebook.name}: already started for this schedule slot (nothing to do)"
        where = f" in cell {self.cell_index}" if self.cell_index is not None else ""
        why = f": {self.error_type}: {self.error_message}" if self.error_type else ""
        return (f"{self.notebook.name}: {self.status}{where}{why} after {self.seconds:.1f}s "
                f"({self.cells_executed} of {self.cells_total} code cells ran; executed copy: {self.output})")


# -- running ------------------------------------------------------------------------------------


class _Supervisor:
    """What nbclient's hooks report, cell by cell, and the watchdog."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total = total
        self.progress = progress
        self.running: int | None = None
        self.injected_before = 0
        self.executed = 0
        self.error: tuple[int, str, str] | None = None
        self.timed_out = False
        self.km: Any = None

    def _input_index(self, index: int) -> int:
        return index - self.injected_before

    def on_cell_start(self, cell: Any, cell_index: int) -> None:
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            self.injected_before += 1
        if _executes(cell):
            self.running = cell_index

    def on_cell_executed(self, cell: Any, cell_index: int, execute_reply: Any) -> None:
        self.executed += 1
        if self.progress is not None:
            self.progress(self.executed, self.total)

    def on_cell_error(self, cell: Any, cell_index: int, execute_reply: Any) -> None:
        content = execute_reply.get("content", {}) if execute_reply else {}
        if self.error is None:
            injected = "injected-parameters" in cell.get("metadata", {}).get("tags", [])
            index = cell_index if injected else self._input_index(cell_index)
            self.error = (index, str(content.get("ename", "Error")), str(content.get("evalue", "")))

    def running_input_index(self) -> int | None:
        return None if self.running is None else self._input_index(self.running)

    def kill(self) -> None:
        """The watchdog: kill the kernel (nbclient then reports it dead)."""
        self.timed_out = True
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        pid = getattr(process, "pid", None)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _executes(cell: Any) -> bool:
    """Whether nbclient runs the cell (code, not empty, not tagged to be skipped)."""
    return bool(cell.cell_type == "code" and cell.source.strip()
                and "skip-execution" not in cell.get("metadata", {}).get("tags", []))


@contextlib.contextmanager
def claims_lock(home: Path) -> Iterator[None]:
    """Hold ``<home>/claims.lock``: claims of scheduled runs (and judging a trigger) happen under it."""
    with open(home / "claims.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _already_started(ledger: Ledger, job: str, scheduled_for: str, attempt: int) -> bool:
    frame = ledger.query(
        "SELECT 1 FROM events WHERE type = 'review_run_started' AND (payload->>'job') = $job "
        "AND (payload->>'scheduled_for') = $at AND (payload->>'attempt')::INTEGER = $attempt LIMIT 1",
        {"job": job, "at": scheduled_for, "attempt": attempt})
    return not frame.empty


def run_review(
    ledger: Ledger,
    notebook: str | os.PathLike[str],
    parameters: Mapping[str, Any] | None = None,
    *,
    timeout: float | None = None,
    job: str | None = None,
    scheduled_for: str | None = None,
    attempt: int = 1,
    cwd: Path | None = None,
    kernel_name: str = "python3",
    progress: Progress | None = None,
    environment: Mapping[str, str] | None = None,
    alerts: LoadedAlerts | None = None,
) -> ReviewResult:
    """Run a review notebook under supervision and record how it went.

    Parameters
    ----------
    notebook
        The review notebook (must have a ``parameters`` cell).
    parameters
        Name -> value, given to the notebook unchanged; each must be of a type its parameter
        accepts (:func:`nbgov.reviews.parameters.check_parameters`; nothing is converted).
    timeout
        Seconds for the whole run; the kernel is killed when they pass.
    job, scheduled_for, attempt
        For scheduled runs: a repeated trigger of the same attempt is a no-op.
    cwd
        The kernel's working directory (default: the notebook's directory).
    alerts
        Sinks to alert when the run does not succeed (the alert is recorded either way).

    Raises
    ------
    ReviewError
        Bad notebook or parameters (nothing recorded).
    """
    if timeout is not None and not timeout > 0:
        raise ReviewError(f"timeout must be a positive number of seconds, not {timeout!r}")
    if attempt < 1:
        raise ReviewError(f"attempt must be 1 or more, not {attempt}")
    if (job is None) != (scheduled_for is None):
        raise ReviewError("a scheduled run names both its job and its scheduled time")
    path = Path(notebook).expanduser().resolve()
    declared = notebook_parameters(path)
    values = check_parameters(declared, dict(parameters or {}))
    source = path.read_bytes()
    import hashlib

    run_id = uuid.uuid4().hex
    ledger.ensure_home()
    runs = ledger.home / "runs"
    runs.mkdir(mode=0o700, exist_ok=True)
    output = runs / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{run_id[:8]}-{path.name}"
    session = Session(run_id=run_id, notebook=str(path))
    started = ReviewRunStarted(
        run_id=run_id, notebook=str(path), notebook_sha256=hashlib.sha256(source).hexdigest(),
        parameters=_recordable(values), output=str(output), timeout_s=timeout, job=job,
        scheduled_for=scheduled_for, attempt=attempt, host=hostname(), pid=os.getpid())
    if job is not None and scheduled_for is not None:
        with claims_lock(ledger.home):
            if _already_started(ledger, job, scheduled_for, attempt):
                return ReviewResult(run_id, SUCCEEDED, path, None, duplicate=True, parameters=values)
            ledger.append(started, session=session)
            ledger.ingest()  # visible to every other trigger before the lock is released
    else:
        ledger.append(started, session=session)

    cells = nbformat.reads(source.decode("utf-8"), 4).cells  # type: ignore[no-untyped-call]
    supervisor = _Supervisor(sum(map(_executes, cells)) + (1 if values else 0), progress)
    began = time.monotonic()
    failure = _execute(path, output, values, supervisor, timeout=timeout, kernel_name=kernel_name,
                       cwd=cwd or path.parent, environment={
                           **(environment or {}), "NBGOV_RUN_ID": run_id,
                           "NBGOV_HOME": str(ledger.home.resolve()), "NBGOV_NOTEBOOK": str(path)})
    seconds = time.monotonic() - began
    status, index, error_type, message = _judge(supervisor, failure)
    output_print = fingerprint_file(output).digest if output.is_file() else None
    ledger.append(ReviewRunFinished(
        run_id=run_id, status=status, cells_total=supervisor.total, cells_executed=supervisor.executed,
        duration_us=int(seconds * 1e6), output=str(output), output_fingerprint=output_print,
        cell_index=index, error_type=error_type, error_message=message, job=job,
        scheduled_for=scheduled_for, attempt=attempt), session=session)
    ledger.sync()
    result = ReviewResult(run_id, status, path, output, output_print, supervisor.total,
                          supervisor.executed, index, error_type, message, seconds, parameters=values)
    with contextlib.suppress(NbgovError):  # a busy ledger: the events wait in the spool
        ledger.ingest(checkpoint="review_run")
        if not result.ok:
            from nbgov.alerts.raising import raise_alert

            raise_alert(ledger, alerts, reason="policy_breach" if result.policy_breach else status,
                        job=job, run_id=run_id, message=result.describe())
    return result


def _recordable(values: Mapping[str, Any]) -> dict[str, Any]:
    from nbgov.canonical import to_json_value
    from nbgov.redaction import redact_value

    return {name: redact_value(to_json_value(value), name) for name, value in values.items()}


def _execute(path: Path, output: Path, values: Mapping[str, Any], supervisor: _Supervisor, *,
             timeout: float | None, kernel_name: str, cwd: Path,
             environment: Mapping[str, str]) -> BaseException | None:
    """Run papermill with the supervisor's hooks and watchdog; return what it raised, if anything."""
    import papermill
    from jupyter_client.manager import AsyncKernelManager

    supervisor.km = AsyncKernelManager(kernel_name=kernel_name)
    watchdog = threading.Timer(timeout, supervisor.kill) if timeout else None
    try:
        with environment_variables(environment):
            if watchdog is not None:
                watchdog.daemon = True
                watchdog.start()
            papermill.execute_notebook(
                str(path), str(output), parameters=dict(values), cwd=str(cwd), kernel_name=kernel_name,
                progress_bar=False, log_output=False, km=supervisor.km,
                on_cell_start=supervisor.on_cell_start, on_cell_executed=supervisor.on_cell_executed,
                on_cell_error=supervisor.on_cell_error)
    except BaseException as exc:  # noqa: BLE001 - every way a run ends is an outcome to record
        if isinstance(exc, KeyboardInterrupt):
            supervisor.kill()
            raise
        return exc
    finally:
        if watchdog is not None:
            watchdog.cancel()
        _shut_down(supervisor.km)
    return None


def _shut_down(km: Any) -> None:
    """Ask the run's kernel to shut down (papermill leaves a kernel it was handed running): it
    records its session's end, and is killed if it has not gone within jupyter_client's wait."""
    from jupyter_core.utils import run_sync

    try:
        if run_sync(km.is_alive)():
            run_sync(km.shutdown_kernel)(now=False)
    except Exception:  # noqa: BLE001 - a kernel already gone, or one that will not go: nothing to keep
        pass


def _judge(supervisor: _Supervisor, failure: BaseException | None) -> tuple[str, int | None, str | None,
                                                                            str | None]:
    """The run's status from what the supervisor saw, and the exception papermill raised."""
    running = supervisor.running_input_index()
    if supervisor.timed_out:
        return TIMED_OUT, running, None, None
    if failure is not None and type(failure).__name__ == "DeadKernelError":
        return KERNEL_DIED, running, None, None
    if supervisor.error is not None:
        index, ename, evalue = supervisor.error
        return FAILED, index, ename, evalue[:2000]
    if failure is not None:
        return FAILED, running, type(failure).__name__, str(failure).splitlines()[0][:2000] if str(
            failure) else None
    if supervisor.executed < supervisor.total:
        return FAILED, running, "Incomplete", (
            f"only {supervisor.executed} of {supervisor.total} code cells ran")
    return SUCCEEDED, None, None, None
