"""The recording session under a :class:`~nbgov.capture.recorder.Recorder`: its lifecycle and its
cells.

:class:`RecordingSession` starts a session (``session_started``, with the environment's facts)
and stops it (``session_ended``, then a last ingest); appends events in the session envelope of
the running cell; keeps nbgov's own work out of capture (:meth:`~RecordingSession.internal`) and
turns a failing capture step into a ``capture_failed`` event and a single warning per hook
(:meth:`~RecordingSession.guard`). Around every cell it records ``cell_executed``: the source,
redacted, with its def-use facts and the lineage they give. A background flusher ingests every few
seconds. What library calls report is :class:`~nbgov.capture.recorder.Recorder`'s.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import os
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from nbgov._version import __version__
from nbgov.canonical import encode_plain
from nbgov.capture import environment
from nbgov.capture.dataflow import CellFlow, ProvenanceTracker, analyze_cell
from nbgov.capture.estimators import ModelRegistry
from nbgov.errors import NbgovError, NbgovWarning, SpoolError
from nbgov.events import (
    CaptureFailed,
    CellExecuted,
    Event,
    SessionEnded,
    SessionStarted,
    cell_payload,
)
from nbgov.fingerprint import FileFingerprinter
from nbgov.identity import hostname
from nbgov.ledger.envelope import Session, format_time
from nbgov.ledger.facade import Ledger
from nbgov.redaction import SecretMemory

__all__ = ["RecordingSession"]

T = TypeVar("T")

#: Seconds a session end may spend on the ledger before it leaves the rest to the next ingest.
STOP_BUDGET = 0.5


class _Cell:
    """The cell running now (a plain class: one is made around every cell)."""

    __slots__ = ("cell_id", "filename", "flow", "model_name", "node", "pending", "reads", "source",
                 "started_ns", "_base", "_session")

    def __init__(self, node: str, base: Session, source: str, cell_id: str | None,
                 flow: CellFlow | None) -> None:
        self.node = node
        self._base = base
        self.started_ns = time.time_ns()
        self.source = source
        self.cell_id = cell_id
        self.flow = flow
        self.model_name: str | None = None
        #: the file name the cell's code was compiled under (its frames say which statement runs)
        self.filename: str | None = None
        #: datasets read, each with the top-level statement that read it (None: not known)
        self.reads: list[tuple[str, int | None]] = []
        self.pending: list[Callable[[], None]] = []
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        """The session envelope of events recorded during this cell (built when first needed)."""
        if self._session is None:
            base = self._base
            self._session = Session(session_id=base.session_id, kernel_id=base.kernel_id,
                                    notebook=base.notebook, cell_id=self.cell_id, cell_run=self.node,
                                    run_id=base.run_id)
        return self._session


class RecordingSession:
    """A session's lifecycle, its plumbing and its cells: the part of a
    :class:`~nbgov.capture.recorder.Recorder` that is not about library calls (its
    parameters are the Recorder's)."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        namespace: MutableMapping[str, Any] | None = None,
        flush_interval: float = 5.0,
        transform: Callable[[str], str] | None = None,
    ) -> None:
        self.ledger = ledger
        self.namespace: MutableMapping[str, Any] = namespace if namespace is not None else {}
        self.transform = transform
        self.session_id = uuid.uuid4().hex[:16]
        self.session = Session(session_id=self.session_id)
        self.node = f"session:{self.session_id}"
        self.provenance = ProvenanceTracker()
        self.fingerprints = FileFingerprinter()
        self.models = ModelRegistry()
        self.cells = 0
        self.started = False
        self.stopped = False
        self._cell: _Cell | None = None
        self._cell_ids: dict[str, list[str]] = {}
        self._flows: dict[str, CellFlow] = {}
        self._sources: dict[tuple[str, int], tuple[str, str, int]] = {}
        self.secrets = SecretMemory()
        self._warned: set[str] = set()
        self._local = threading.local()
        self._flusher = _Flusher(self, flush_interval) if flush_interval > 0 else None
        # Set by every append, cleared by the flusher: a plain flag (bool writes are atomic under
        # the GIL), since an Event's lock would cost more than the append around every cell.
        self.dirty = False
        self._spool_failures = 0
        self._spool_failed_since = ""

    # -- lifecycle ------------------------------------------------------------------------------

    def start(
        self,
        *,
        kernel_id: str | None = None,
        notebook: str | None = None,
        notebook_source: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """Record ``session_started`` with the environment's facts and start the flusher."""
        environ = os.environ if environ is None else environ
        if notebook is None:
            notebook, notebook_source = environment.find_notebook(environ, self.namespace)
        self._cell_ids = environment.notebook_cell_ids(notebook)
        # A review run (nbgov review run) tells its kernel the run id: every event links to the run.
        self.session = Session(session_id=self.session_id, kernel_id=kernel_id, notebook=notebook,
                               run_id=environ.get("NBGOV_RUN_ID") or None)
        packages = environment.package_snapshot()
        self._keep_artifact(f"packages-{packages.sha256}.txt", packages.text)
        where = Path(notebook).parent if notebook and os.path.isabs(notebook) else Path.cwd()
        git = environment.git_state(where)
        notebook_sha = None
        if notebook and os.path.isfile(notebook):
            notebook_sha = hashlib.sha256(Path(notebook).read_bytes()).hexdigest()
        self.append(SessionStarted(
            host=hostname(), python=environment.python_version(), pid=os.getpid(),
            kernel_id=kernel_id, notebook=notebook, notebook_source=notebook_source,
            notebook_sha256=notebook_sha, packages_sha256=packages.sha256,
            packages_count=packages.count, git_root=git.root if git else None,
            git_commit=git.commit if git else None, git_dirty=git.dirty if git else None,
            nbgov_version=__version__,
        ))
        self.started = True
        if self._flusher is not None:
            self._flusher.start()

    def stop(self, reason: str) -> None:
        """Record ``session_ended``, then ingest what is left if that can be done at once.

        Nothing here waits for the ledger: ``session_ended`` is in the spool (and fsynced) before
        anything else happens, the flusher gets :data:`STOP_BUDGET` seconds to finish an ingest it
        is in the middle of, and the last ingest gives up at once if another process holds the
        ledger (papermill kills a kernel that takes more than a few seconds to shut down; the
        spool keeps the events for the next query or ``nbgov ingest``)."""
        if self.stopped:
            return
        self.stopped = True
        started = time.monotonic()
        if self.started:
            self.append(SessionEnded(reason=reason, cells=self.cells))
        try:
            self.ledger.sync()  # a session boundary: what was recorded survives a power loss too
        except OSError:
            pass
        busy = self._flusher is not None and not self._flusher.stop(timeout=STOP_BUDGET)
        if busy or time.monotonic() - started > STOP_BUDGET:
            return  # the flusher is still ingesting (it takes this session's events with it)
        try:
            with self.internal():
                self.ledger.ingest(checkpoint="session_end", wait=False)
        except NbgovError as exc:  # busy, or a team ledger's PostgreSQL unreachable
            warnings.warn(
                f"nbgov: the session's events stay in the spool for now ({exc.message}); the next "
                "query or `nbgov ingest` moves them into the ledger",
                NbgovWarning,
                stacklevel=2,
            )

    # -- plumbing -------------------------------------------------------------------------------

    def append(self, event: Event, *, session: Session | None = None) -> str:
        """Append *event* in the current cell's session (or the given one); its id, or "" if the
        spool could not take it (counted, see :meth:`_spooled`)."""
        if session is None:
            session = self._cell.session if self._cell is not None else self.session
        return self._spooled(lambda: self.ledger.append(event, session=session))

    def _spooled(self, write: Callable[[], str]) -> str:
        """Run one spool append. A failed one (a full disk, a spool made read-only) is counted
        here, in memory; the first append that works again records ``capture_failed`` with that
        count first, so the ledger says how many events are missing and since when."""
        if self._spool_failures:
            self._report_spool_failures()
        try:
            event_id = write()
        except SpoolError as exc:
            if not self._spool_failures:
                self._spool_failed_since = format_time(time.time_ns())
            self._spool_failures += 1
            if "spool" not in self._warned:
                self._warned.add("spool")
                warnings.warn(
                    f"nbgov could not record an event: {exc.message}. Your code runs on; nbgov "
                    "counts what it cannot record and writes the count to the ledger once it can.",
                    NbgovWarning, stacklevel=4)
            return ""
        self.dirty = True
        return event_id

    def _report_spool_failures(self) -> None:
        count, since = self._spool_failures, self._spool_failed_since
        message = (f"{count} event(s) of this session could not be written to the spool since "
                   f"{since} (the disk was full or not writable); they are not in the ledger")
        try:
            self.ledger.append(CaptureFailed(hook="spool", error_type="SpoolError", message=message,
                                             events_lost=count), session=self.session)
        except SpoolError:
            return  # still failing: keep counting
        self._spool_failures = 0
        self._warned.discard("spool")

    @contextlib.contextmanager
    def internal(self) -> Iterator[None]:
        """nbgov's own work in this thread: library patches do not capture it."""
        depth = getattr(self._local, "internal", 0)
        self._local.internal = depth + 1
        try:
            yield
        finally:
            self._local.internal = depth

    def capturing(self) -> bool:
        """True when library calls in this thread should be captured."""
        return self.started and not self.stopped and not getattr(self._local, "internal", 0)

    def guard(self, hook: str, function: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """Run a capture step; a failure becomes a ``capture_failed`` event, never an exception.

        Warnings libraries raise during the step (numpy fingerprinting an array, pickle, a
        deprecation) are nbgov's business, not the user's: they never reach the notebook.
        """
        local = self._local
        depth = getattr(local, "internal", 0)
        local.internal = depth + 1  # what the step itself calls is nbgov's work, not captured
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return function(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - capture must never break the user's code
            self.capture_failed(hook, exc)
            return None
        finally:
            local.internal = depth

    def capture_failed(self, hook: str, exc: BaseException) -> None:
        message = self.secrets.redact(str(exc))[0][:500]
        recorded = ""
        try:
            with self.internal():
                recorded = self.append(CaptureFailed(hook=hook, error_type=type(exc).__name__,
                                                     message=message))
        except Exception:  # noqa: BLE001 - even recording the failure must not break the cell
            pass
        if hook not in self._warned:
            self._warned.add(hook)
            where = ("This is recorded in the ledger; later failures of this hook are recorded "
                     "without a warning." if recorded else
                     "It could not be recorded either (the spool refused it); it is counted.")
            warnings.warn(
                f"nbgov could not capture {hook} ({type(exc).__name__}: {message}); your code ran "
                f"normally. {where}",
                NbgovWarning,
                stacklevel=2,
            )

    def _keep_artifact(self, name: str, text: str) -> None:
        """Keep *text* under ``<home>/artifacts/`` (content-addressed: written once)."""
        self.ledger.ensure_home()
        path = self.ledger.home / "artifacts" / name
        if not path.exists():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            os.replace(tmp, path)

    # -- cells ----------------------------------------------------------------------------------

    def begin_cell(self, source: str, *, cell_id: str | None = None) -> None:
        self.cells += 1
        if cell_id is None and self._cell_ids:
            ids = self._cell_ids.get(source)  # papermill does not send cell ids: match the source
            cell_id = ids.pop(0) if ids else None
        self._cell = _Cell(f"cell:{self.session_id}:{self.cells}", self.session, source, cell_id,
                           self._flows.get(source))

    def _flow(self, source: str) -> CellFlow:
        """The def-use facts of a cell's source, parsed once per distinct source."""
        flow = self._flows.get(source)
        if flow is None:
            python = source
            if self.transform is not None and ("%" in source or "!" in source):
                python = self.transform(source)  # magics and shell escapes become Python
            flow = _parse(python)
            if len(self._flows) > 2048:
                self._flows.clear()
            self._flows[source] = flow
        return flow

    def analyze(self, tree: ast.Module, filename: str | None = None) -> None:
        """Use *tree* for the running cell's def-use facts (``%%nbgov train`` runs its body)."""
        if self._cell is not None:
            self._cell.flow = analyze_cell(tree)
            self._cell.filename = filename

    def parsed(self, tree: ast.Module, filename: str | None = None) -> None:
        """IPython parsed the running cell into *tree* (to compile it as *filename*): analyse it,
        unless this source was seen."""
        cell = self._cell
        if cell is None:
            return
        cell.filename = filename
        if cell.flow is None:
            cell.flow = analyze_cell(tree)
            if len(self._flows) > 2048:
                self._flows.clear()
            self._flows[cell.source] = cell.flow

    def running_statement(self) -> int | None:
        """The top-level statement of the running cell that is executing now (found from the
        call stack: the frame of the cell's own code), or None outside a cell."""
        cell = self._cell
        if cell is None or cell.flow is None or cell.filename is None:
            return None
        frame: FrameType | None = sys._getframe(1)
        while frame is not None:
            code = frame.f_code
            if code.co_filename == cell.filename and code.co_name == "<module>":
                return cell.flow.statement_at(frame.f_lineno)
            frame = frame.f_back
        return None

    def set_model_name(self, name: str) -> None:
        """Name the models fitted in the running cell (``%%nbgov train --model NAME``)."""
        if self._cell is not None:
            self._cell.model_name = name

    def end_cell(self, *, execution_count: int | None, ok: bool, error_type: str | None) -> None:
        cell = self._cell
        if cell is None:
            return
        try:
            flow = cell.flow if cell.flow is not None else self._flow(cell.source)
            source, digest, redactions = self._redacted_source(cell.source)
            for emit in cell.pending:
                emit()
            upstream = self.provenance.upstream_cells(flow)
            bindings = self.provenance.record_cell(flow, cell.node, cell.reads, self.namespace)
            payload = cell_payload(
                node=cell.node, cell_id=cell.cell_id, execution_count=execution_count,
                source_sha256=digest, source=source,
                started_at=format_time(cell.started_ns),
                duration_us=(time.time_ns() - cell.started_ns) // 1000, ok=ok,
                error_type=error_type, uses=flow.sorted_uses, defines=flow.sorted_defines,
                inputs=upstream + sorted({node for node, _ in cell.reads}),
                bindings=[b.as_dict() for b in bindings] or None, redactions=redactions,
            )
            session = cell.session.encoded if cell._session is not None else encode_plain(
                {"cell_id": cell.cell_id, "cell_run": cell.node, "kernel_id": self.session.kernel_id,
                 "notebook": self.session.notebook, "run_id": self.session.run_id,
                 "session_id": self.session_id},
                skip_none=True)
            self._spooled(lambda: self.ledger.append_encoded(CellExecuted, payload, session))
        finally:
            self._cell = None

    def _redacted_source(self, source: str) -> tuple[str, str, int]:
        """The cell's redacted source, its SHA-256 and the number of redactions (cached: cells
        are run again and again; the cache is keyed by how many secrets are remembered)."""
        key = (source, len(self.secrets))
        found = self._sources.get(key)
        if found is None:
            redacted, count = self.secrets.redact(source)
            found = (redacted, hashlib.sha256(redacted.encode()).hexdigest(), count)
            if len(self._sources) > 1024:
                self._sources.clear()
            self._sources[(source, len(self.secrets))] = found
        return found


class _Flusher:
    """Ingests in the background, so queries find little left to ingest."""

    def __init__(self, recorder: RecordingSession, interval: float) -> None:
        self._recorder = recorder
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nbgov-flush", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> bool:
        """Stop after the ingest in progress, if any; False if it was still running after
        *timeout* seconds (it goes on in the background, a daemon thread)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        recorder = self._recorder
        while not self._stop.wait(self._interval):
            if not recorder.dirty:
                continue
            recorder.dirty = False
            try:
                with recorder.internal():
                    recorder.ledger.ingest()
            except NbgovError:
                recorder.dirty = True  # busy or unavailable: the spool keeps it, try again later


def _parse(source: str) -> CellFlow:
    try:
        return analyze_cell(ast.parse(source))
    except (SyntaxError, ValueError):
        return CellFlow(())
