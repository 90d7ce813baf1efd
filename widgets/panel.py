"""The governance panel: what nbgov captured and where a model stands, in the notebook.

``%nbgov panel [MODEL]`` or ``nbgov.widgets.GovernancePanel()`` shows six tabs over the ledger:
Session (what this kernel captured, refreshed as cells run), Lineage (a model's upstream graph as
a picture), Policy (the findings of a check of the chosen version), Approvals (request, approve,
reject), Reviews (review runs, schedules, a quantity over time against its policy limit) and
Provenance (declare where a dataset this session read came from).

Every action calls the core (:mod:`nbgov.governance.approvals`, :mod:`nbgov.governance.checks`, the recorder's
``declare_dataset``) and every view reads :mod:`nbgov.governance.overview`: the panel decides nothing itself.
An action the core refuses shows the core's message and hint.
"""

from __future__ import annotations

import atexit
import html
import threading
import time
import weakref
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import ipywidgets as w

from nbgov.errors import NbgovError
from nbgov.widgets.render import STYLE, badge, message, short, table

__all__ = ["GovernancePanel"]

TABS = ("Session", "Lineage", "Policy", "Approvals", "Reviews", "Provenance")
_LIVE: weakref.WeakSet[GovernancePanel] = weakref.WeakSet()
REFRESH_EVERY = 1.0  # seconds: at most one Session refresh per interval while cells run

# -- the panel -----------------------------------------------------------------------------------


class GovernancePanel(w.VBox):  # type: ignore[misc]
    """The governance panel; display it (the last expression of a cell) to show it.

    Parameters
    ----------
    model : str, optional
        ``name`` or ``name@version`` to select first (default: the newest model version).
    ledger : Ledger, optional
        The ledger to show (default: the recording session's, else the configured one).
    policy : str or LoadedPolicy, optional
        The policy file (default: the one in force, as for ``nbgov check``).
    shell : InteractiveShell, optional
        The shell whose cells refresh the Session tab (default: the running one).
    """

    def __init__(self, model: str | None = None, *, ledger: Any = None, policy: Any = None,
                 shell: Any = None, **kwargs: Any) -> None:
        from nbgov.capture.recorder import active

        self.recorder = active() if ledger is None else None
        self._policy_given = policy
        if ledger is None:
            from nbgov.ledger.facade import Ledger

            ledger = self.recorder.ledger if self.recorder is not None else Ledger()
        self.ledger = ledger
        self._refresh_lock = threading.Lock()
        self._last_session_refresh = 0.0
        self._pending: threading.Timer | None = None
        self._workers: list[threading.Timer] = []  # refreshes started and maybe still running
        self._hook: Callable[..., None] | None = None
        self._shell = shell

        self.model = w.Dropdown(description="Model", layout=w.Layout(width="420px"))
        self.refresh_button = w.Button(description="Refresh", icon="refresh", layout=w.Layout(width="110px"))
        self.refresh_button.on_click(lambda _: self.refresh())
        self.status = w.HTML()

        self.session_view = w.HTML()
        self.lineage_view = w.HTML()
        self.policy_view = w.HTML()
        self.record_check = w.Button(description="Record this check",
                                     layout=w.Layout(width="auto", align_self="flex-start"))
        self.record_check.on_click(lambda _: self._act(self._record_check, self.policy_result))
        self.policy_result = w.HTML()

        self.approval_view = w.HTML()
        self.note = w.Textarea(placeholder="note (approve, request) or reason (reject: required)",
                               layout=w.Layout(width="96%", height="60px"))
        self.request_button = w.Button(description="Request approval", layout=w.Layout(width="auto"))
        self.approve_button = w.Button(description="Approve", button_style="success")
        self.reject_button = w.Button(description="Reject", button_style="danger")
        self.request_button.on_click(lambda _: self._act(self._request, self.approval_result))
        self.approve_button.on_click(lambda _: self._act(self._approve, self.approval_result))
        self.reject_button.on_click(lambda _: self._act(self._reject, self.approval_result))
        self.approval_result = w.HTML()

        self.reviews_view = w.HTML()
        self.quantity = w.Dropdown(description="Plot", layout=w.Layout(width="420px"))
        self.chart = w.HTML()

        field = w.Layout(width="96%")
        self.dataset = w.Dropdown(description="Dataset", layout=field)
        self.source = w.Text(description="Source", layout=field)
        self.license = w.Text(description="Licence", layout=field)
        self.owner = w.Text(description="Owner", layout=field)
        self.pii = w.SelectMultiple(description="PII columns", rows=6, layout=field)
        self.description = w.Textarea(description="Description", layout=w.Layout(width="96%", height="50px"))
        self.declare_button = w.Button(description="Declare provenance", button_style="primary",
                                       layout=w.Layout(width="auto", align_self="flex-start"))
        self.declare_button.on_click(lambda _: self._act(self._declare, self.declare_result))
        self.declare_result = w.HTML()
        self.dataset.observe(lambda _: self._show_columns(), names="value")

        tabs = w.Tab(children=[
            w.VBox([self.session_view]),
            w.VBox([self.lineage_view]),
            w.VBox([self.policy_view, self.record_check, self.policy_result]),
            w.VBox([self.approval_view, self.note,
                    w.HBox([self.request_button, self.approve_button, self.reject_button]),
                    self.approval_result]),
            w.VBox([self.reviews_view, self.quantity, self.chart]),
            w.VBox([self.dataset, self.source, self.license, self.owner, self.pii, self.description,
                    self.declare_button, self.declare_result]),
        ])
        for index, title in enumerate(TABS):
            tabs.set_title(index, title)
        self.tabs = tabs
        super().__init__([w.HTML(STYLE), w.HBox([self.model, self.refresh_button]), self.status, tabs],
                         layout=w.Layout(width="100%", max_width="1200px"), **kwargs)
        self.add_class("nbgov-panel")

        self._choose_model(model)
        self.model.observe(lambda _: self._show_model(), names="value")
        self.quantity.observe(lambda _: self._show_chart(), names="value")
        self.refresh()
        self._watch_cells()
        _LIVE.add(self)

    # -- reading -------------------------------------------------------------------------------

    def _internal(self) -> AbstractContextManager[Any]:
        """The recorder must not capture the panel's own reads as the notebook's."""
        return self.recorder.internal() if self.recorder is not None else nullcontext()

    def _query(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with self._internal():
            return fn(*args, **kwargs)

    def _policy(self) -> Any:
        from nbgov.governance.policy import LoadedPolicy, load_policy

        if isinstance(self._policy_given, LoadedPolicy):
            return self._policy_given
        return load_policy(self._policy_given)

    @property
    def selected(self) -> str | None:
        value = self.model.value
        return str(value) if value else None

    def _choose_model(self, wanted: str | None) -> None:
        from nbgov.governance.overview import model_refs

        refs = self._query(model_refs, self.ledger)
        self.model.options = [(f"{r['ref']} ({r['state']})", r["ref"]) for r in refs]
        values = [r["ref"] for r in refs]
        if wanted:
            match = [v for v in values if v == wanted or v.split("@")[0] == wanted]
            if not match:
                self.status.value = message(f"no model version {wanted!r} in the ledger", ok=False)
            self.model.value = match[0] if match else (values[0] if values else None)
        elif values and self.model.value not in values:
            self.model.value = values[0]

    def refresh(self) -> None:
        """Read everything again (also after each cell, for the Session tab)."""
        self._choose_model(self.selected)
        self._show_session()
        self._show_model()
        self._show_datasets()

    def _guard(self, view: w.HTML, fn: Callable[[], str]) -> None:
        try:
            view.value = fn()
        except NbgovError as exc:
            view.value = message(exc.message, ok=False, hint=exc.hint)

    def _show_session(self) -> None:
        self._last_session_refresh = time.monotonic()
        self._guard(self.session_view, self._session_html)

    def _session_html(self) -> str:
        from nbgov.governance.overview import session_summary

        if self.recorder is None:
            return message("nbgov is not recording in this kernel", ok=False,
                           hint="run %load_ext nbgov first; the other tabs read the ledger as it is")
        summary = self._query(session_summary, self.ledger, self.recorder.session_id)
        failed = f", {summary.failed_cells} failed" if summary.failed_cells else ""
        session = html.escape(summary.session_id[:12])
        parts = [f'<p data-cells="{summary.cells}">Session <code>{session}</code>: '
                 f"<b>{summary.cells}</b> cell(s) captured{failed}.</p>",
                 "<h4>Datasets</h4>",
                 table(summary.datasets, [("direction", "direction"), ("path", "path"),
                                          ("fingerprint", "fingerprint"), ("rows", "rows"), ("via", "via")],
                       cells={"fingerprint": short}, empty="no dataset read or written yet"),
                 "<h4>Models</h4>",
                 table(summary.models, [("model", "model"), ("version", "version"),
                                        ("estimator", "estimator"), ("n_samples", "samples"),
                                        ("model_fingerprint", "fingerprint")],
                       cells={"model_fingerprint": short}, empty="no model fitted yet"),
                 "<h4>Metrics</h4>",
                 table(summary.metrics, [("model", "model"), ("version", "version"), ("metric", "metric"),
                                         ("value", "value"), ("via", "via")], empty="no metric yet")]
        if summary.lost:  # earlier kernels of this user that were killed: their record ends early
            parts += [f'<h4 data-lost="{len(summary.lost)}">Sessions ended: lost</h4>',
                      table(summary.lost, [("session_id", "session"), ("notebook", "notebook"),
                                           ("last_event_type", "last event"),
                                           ("last_event_at", "at"), ("cells", "cells")],
                            cells={"session_id": short}, empty="")]
        return "".join(parts)

    def _show_model(self) -> None:
        for view, render in ((self.lineage_view, self._lineage_html),
                             (self.policy_view, self._policy_html),
                             (self.approval_view, self._approvals_html),
                             (self.reviews_view, self._reviews_html)):
            self._guard(view, render)
        self._choose_quantities()

    def _no_model(self) -> str:
        return message("no model version recorded yet", ok=False,
                       hint="fit a model with %load_ext nbgov active; it appears here")

    def _lineage_html(self) -> str:
        from nbgov.governance.overview import lineage_graph
        from nbgov.render.svg import lineage_svg

        if self.selected is None:
            return self._no_model()
        graph = self._query(lineage_graph, self.ledger, self.selected)
        counts = ", ".join(f"{len(graph.of_kind(k))} {k}(s)" for k in ("dataset", "cell", "evaluation"))
        picture = lineage_svg(graph.nodes, graph.edges, focus=graph.focus)
        return (f"<p>Upstream of <b>{html.escape(self.selected)}</b>: {counts}. Hover a box for its full "
                f'label.</p><div class="nbgov-scroll nbgov-lineage">{picture}</div>')

    def _policy_html(self) -> str:
        from nbgov.governance.checks import check_model

        if self.selected is None:
            return self._no_model()
        report = self._query(check_model, self.ledger, self.selected, self._policy(), record=False)
        order = {"fail": 0, "warn": 1, "pass": 2}
        rows = [f.as_dict() for f in sorted(report.findings, key=lambda f: order.get(f.status, 3))]
        verdict = "pass" if report.passed else "fail"
        sha = html.escape(str(report.policy_sha256)[:12])
        return (f'<p data-verdict="{verdict}">{html.escape(self.selected)} against the policy '
                f"<code>{sha}</code> ({html.escape(str(report.policy_source))}): "
                f"{badge(verdict)} — {len(report.failures)} failing finding(s). Not recorded until you "
                f"record it.</p>"
                + table(rows, [("status", "status"), ("code", "rule"), ("subject", "subject"),
                               ("message", "finding"), ("remedy", "what to do")], cells={"status": badge}))

    def _approvals_html(self) -> str:
        from nbgov.governance.overview import approval_status

        if self.selected is None:
            return self._no_model()
        status = self._query(approval_status, self.ledger, self.selected)
        version, you = status.version, self.ledger.actor.id
        return (f'<p data-state="{html.escape(version.state)}">{html.escape(version.ref)} is '
                f"{badge(version.state)}; trained by <b>{html.escape(version.author)}</b>; "
                f"approvals: {version.approvals}. You are <b>{html.escape(you)}</b>.</p>"
                "<h4>Decisions</h4>"
                + table(status.decisions, [("event_time", "when"), ("decision", "decision"),
                                           ("reviewer", "by"), ("detail", "reason / note")],
                        cells={"decision": badge}, empty="no decision recorded")
                + "<h4>Requests</h4>"
                + table(status.requests, [("requested_at", "when"), ("requested_by", "by"), ("note", "note"),
                                          ("decision", "outcome")], empty="no request recorded"))

    def _reviews_html(self) -> str:
        from nbgov.governance.overview import review_overview

        data = self._query(review_overview, self.ledger, limit=15)
        return ("<h4>Review runs</h4>"
                + table(data["runs"], [("started_at", "started"), ("notebook", "notebook"),
                                       ("job", "schedule"),
                                       ("model", "model"), ("status", "status"), ("error_message", "why"),
                                       ("seconds", "seconds")], cells={"status": badge},
                        empty="no review run yet (nbgov review run NOTEBOOK)")
                + "<h4>Schedules</h4>"
                + table(data["schedules"], [("job", "job"), ("notebook", "notebook"), ("cron", "cron"),
                                            ("tz", "zone"), ("catch_up", "catch-up"), ("retries", "retries")],
                        empty="no schedule (nbgov schedule add NOTEBOOK --cron ...)")
                + ("<h4>Missed runs</h4>" + table(data["missed"], [("scheduled_for", "due"), ("job", "job"),
                                                                  ("detected_at", "detected")])
                   if data["missed"] else ""))

    def _choose_quantities(self) -> None:
        from nbgov.governance.overview import metric_choices

        if self.selected is None:
            self.quantity.options = []
            self.chart.value = ""
            return
        name = self.selected.rsplit("@", 1)[0]
        options = self._query(metric_choices, self.ledger, name)
        keep = self.quantity.value
        self.quantity.options = options
        values = [v for _, v in options]
        self.quantity.value = keep if keep in values else (values[0] if values else None)
        self._show_chart()

    def _show_chart(self) -> None:
        self._guard(self.chart, self._chart_html)

    def _chart_html(self) -> str:
        from nbgov.governance.overview import metric_series
        from nbgov.render.charts import line_chart_svg

        if self.selected is None or not self.quantity.value:
            return ""
        try:
            policy = self._policy()
        except NbgovError:
            policy = None
        series = self._query(metric_series, self.ledger, self.selected.rsplit("@", 1)[0],
                             str(self.quantity.value), policy)
        label = None if series.limit is None else f"policy limit {series.limit:g}"
        svg = line_chart_svg(series.series, limit=series.limit, limit_label=label, breach=series.breach,
                             title=series.title, y_label=series.y_label)
        return f'<div class="nbgov-scroll nbgov-chart">{svg}</div>'

    def _show_datasets(self) -> None:
        if self.recorder is None:
            self.dataset.options = []
            self.declare_button.disabled = True
            self.declare_result.value = message("nbgov is not recording in this kernel", ok=False,
                                                hint="run %load_ext nbgov first")
            return
        from nbgov.governance.overview import datasets_read

        self._columns = self._query(datasets_read, self.ledger, self.recorder.session_id)
        keep = self.dataset.value
        self.dataset.options = list(self._columns)
        if self._columns:
            self.dataset.value = keep if keep in self._columns else next(iter(self._columns))
        self.declare_button.disabled = not self._columns
        if not self._columns:
            self.declare_result.value = ('<p class="nbgov-muted">no dataset read in this session yet: '
                                         "read one (pandas, pyarrow, polars, DuckDB) and it appears here</p>")
        self._show_columns()

    def _show_columns(self) -> None:
        self.pii.options = getattr(self, "_columns", {}).get(self.dataset.value, [])

    # -- acting --------------------------------------------------------------------------------

    def _act(self, action: Callable[[], str], view: w.HTML) -> None:
        """Run a core action; show its outcome, or the core's refusal, then refresh the views."""
        try:
            outcome = action()
        except NbgovError as exc:
            view.value = message(exc.message, ok=False, hint=exc.hint)
        except Exception as exc:  # an unexpected error must still be seen, not only logged
            view.value = message(f"{type(exc).__name__}: {exc}", ok=False)
            raise
        else:
            view.value = message(outcome, ok=True)
        finally:
            self._flush()
            self.refresh()

    def _flush(self) -> None:
        with self._internal():
            self.ledger.ingest()

    def _need_model(self) -> str:
        if self.selected is None:
            raise NbgovError("choose a model version first")
        return self.selected

    def _record_check(self) -> str:
        from nbgov.governance.checks import check_model

        report = self._query(check_model, self.ledger, self._need_model(), self._policy())
        return f"recorded the check of {report.ref}: {'pass' if report.passed else 'fail'}"

    def _request(self) -> str:
        from nbgov.governance.approvals import request_approval

        ref = self._need_model()
        self._query(request_approval, self.ledger, ref, note=self.note.value)
        return f"requested approval of {ref}"

    def _approve(self) -> str:
        from nbgov.governance.approvals import approve

        result = self._query(approve, self.ledger, self._need_model(), self._policy(),
                             note=self.note.value.strip() or None)
        return str(result)

    def _reject(self) -> str:
        from nbgov.governance.approvals import reject

        result = self._query(reject, self.ledger, self._need_model(), self._policy(), reason=self.note.value)
        return str(result)

    def _declare(self) -> str:
        if self.recorder is None or not self.dataset.value:
            raise NbgovError("choose a dataset this session read")
        path = str(self.dataset.value)
        facts = {"source": self.source.value.strip() or None, "license": self.license.value.strip() or None,
                 "owner": self.owner.value.strip() or None, "contains_pii": list(self.pii.value) or None,
                 "description": self.description.value.strip() or None}
        if not any(facts.values()):
            raise NbgovError("nothing to declare", hint="fill in at least the source, licence or owner")
        with self._internal():
            node = self.recorder.declare_dataset(path, **facts)
        return f"declared {path} ({node})"

    # -- following the notebook ----------------------------------------------------------------

    def _watch_cells(self) -> None:
        """Refresh the Session tab after each cell (in the background, at most once per REFRESH_EVERY s)."""
        shell = self._shell
        if shell is None:
            try:
                from IPython import get_ipython

                shell = get_ipython()
            except ImportError:  # pragma: no cover - IPython is a dependency
                shell = None
        if shell is None or self.recorder is None:
            return
        panel = weakref.ref(self)

        def after_cell(result: Any) -> None:
            me = panel()
            if me is None:
                return
            me.after_cell()

        self._hook = after_cell
        shell.events.register("post_run_cell", after_cell)
        self._shell = shell

    def after_cell(self) -> None:
        """Schedule a Session refresh off the kernel's thread: the cell's reply is not delayed."""
        with self._refresh_lock:
            if self._pending is not None:
                return  # one refresh is coming; it will read this cell too
            wait = max(0.0, REFRESH_EVERY - (time.monotonic() - self._last_session_refresh))
            self._pending = threading.Timer(wait, self._refresh_after_cell)
            self._pending.daemon = True
            self._workers.append(self._pending)
            self._pending.start()

    def _refresh_after_cell(self) -> None:
        with self._refresh_lock:
            self._pending = None
            self._workers = [t for t in self._workers if t.is_alive()]
        try:
            self._show_session()
            self._show_datasets()
            self._choose_model(self.selected)
        except Exception as exc:  # noqa: BLE001 - a background refresh must not die silently
            self.status.value = message(f"could not refresh: {type(exc).__name__}: {exc}", ok=False)

    def wait_for_refresh(self, timeout: float = 10.0) -> bool:
        """Wait until no Session refresh is pending (for scripts and tests); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._refresh_lock:
                pending = self._pending
            if pending is None:
                return True
            pending.join(timeout=max(0.0, deadline - time.monotonic()))
        return False

    def close(self) -> None:
        if self._hook is not None:
            try:
                self._shell.events.unregister("post_run_cell", self._hook)
            except ValueError:
                pass
            self._hook = None
        if self._pending is not None:
            self._pending.cancel()
        super().close()


@atexit.register
def _settle_at_exit() -> None:
    """Let a background refresh finish before the interpreter exits (never kill it mid-query)."""
    for panel in list(_LIVE):
        with panel._refresh_lock:
            workers, panel._workers, panel._pending = panel._workers, [], None
        for worker in workers:
            worker.cancel()  # not started yet: never starts
            worker.join(timeout=10)  # running: let it finish its query
