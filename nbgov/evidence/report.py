"""The evidence report: one standalone HTML page an auditor opens from the bundle.

:func:`render_report` lays out the period, the ledger's identity and the caller's verification
summary, a matrix of the SOC 2 criteria against nbgov's controls, each control's evidence and
gaps, charts (review outcomes over time, bias and drift measures against the policy's limits,
decisions per model), links to the model documentation pages and to each evidence table's files.

The page is self-contained: CSS inline, no scripts, no external resources, every value escaped.
It reads at 1280 px without sideways scrolling and prints (A4 landscape) with the same content.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from nbgov.errors import EvidenceError
from nbgov.evidence.controls import (
    CONTROLS,
    CRITERIA,
    EVIDENCED,
    MISSING,
    NOT_ADDRESSED,
    NOT_APPLICABLE,
    PARTIAL,
    Assessment,
    ControlReport,
)
from nbgov.evidence.tables import EvidenceTable
from nbgov.governance.policy import FAIRNESS_LIMITS
from nbgov.render.charts import line_chart_svg, stacked_bar_chart_svg

__all__ = ["render_report"]

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_SCHEME = re.compile(r"^\s*[A-Za-z][A-Za-z0-9+.-]*:")
_STATUS_CLASS = {EVIDENCED: "ok", PARTIAL: "partial", MISSING: "missing", NOT_APPLICABLE: "na",
                 NOT_ADDRESSED: "none"}
_OUTCOMES = (("succeeded", "#009E73"), ("failed", "#D55E00"), ("timed_out", "#E69F00"),
             ("kernel_died", "#CC79A7"), ("running", "#56B4E9"), ("missed", "#8C8C8C"))
_DECISIONS = (("granted", "#009E73"), ("rejected", "#D55E00"), ("denied", "#E69F00"),
              ("rejection denied", "#CC79A7"))
_DRIFT_LIMITS = {"wasserstein / reference std": "max_wasserstein",
                 "jensen-shannon distance": "max_js_distance", "psi": "max_psi"}

_CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f6f8fa;color:#1f2328;
 font:14px/1.45 system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif}
main{max-width:1240px;margin:0 auto;padding:24px 20px 48px;background:#fff}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:20px;margin:36px 0 10px;padding-bottom:4px;border-bottom:1px solid #d0d7de}
h3{font-size:16px;margin:0 0 6px}
p{margin:6px 0}
a{color:#0969da}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
.wrap,td,th,li,p,dd{overflow-wrap:anywhere}
.meta{display:grid;grid-template-columns:repeat(auto-fit,minmax(280px,1fr));gap:8px 24px;
 margin:14px 0}
.meta div{min-width:0}
.meta dt{color:#59636e;font-size:12px}
.meta dd{margin:0}
.status{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;
 white-space:nowrap}
.ok{background:#dafbe1;color:#116329}
.partial{background:#fff8c5;color:#7d4e00}
.missing{background:#ffebe9;color:#a40e26}
.na{background:#eaeef2;color:#424a53}
.none{background:#fff;color:#8c959f}
nav ol{margin:4px 0;padding-left:22px}
nav ol ol{columns:2;column-gap:40px}
nav li{break-inside:avoid;margin:2px 0}
table{border-collapse:collapse;width:100%;margin:8px 0}
th,td{border:1px solid #d0d7de;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}
table.matrix{table-layout:fixed;font-size:12px}
table.matrix th,table.matrix td{padding:3px 4px}
table.matrix thead th{overflow-wrap:normal;vertical-align:bottom}
table.matrix td.cell{text-align:center}
table.matrix col.criterion{width:230px}
table.matrix col.overall{width:92px}
.verdict{padding:10px 14px;border-radius:6px;margin:10px 0}
.control{border:1px solid #d0d7de;border-radius:6px;padding:12px 16px;margin:14px 0;
 break-inside:avoid}
.control ul{margin:4px 0 8px;padding-left:20px}
.gaps li{color:#a40e26}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:16px}
.chart{min-width:0;border:1px solid #d0d7de;border-radius:6px;padding:8px;break-inside:avoid}
.chart svg{display:block;width:100%;height:auto}
.criteria dt{font-weight:600;margin-top:8px}
.criteria dd{margin:0 0 0 16px}
.small{font-size:12px;color:#59636e}
footer{margin-top:40px;font-size:12px;color:#59636e}
@page{size:A4 landscape;margin:12mm}
@media print{
 body{background:#fff}
 main{max-width:none;padding:0}
 a{color:inherit;text-decoration:none}
 .charts{grid-template-columns:1fr 1fr}
 h2{break-after:avoid}}
@media (max-width:700px){.charts{grid-template-columns:1fr}nav ol ol{columns:1}}
"""


def _e(value: Any) -> str:
    """*value* as escaped text (for content and double-quoted attributes alike)."""
    return html.escape(_NOT_XML.sub("\ufffd", "" if value is None else str(value)), quote=True)


def _href(value: str) -> str:
    """A relative link as an attribute value; absolute URLs and other schemes are refused."""
    text = str(value)
    if not text.strip() or _SCHEME.match(text) or text.lstrip().startswith(("/", "\\")):
        raise EvidenceError(f"link {text!r} is not a relative path inside the bundle",
                            hint="pass paths relative to the report, e.g. models/credit@2.html")
    return _e(quote(text, safe="/#?&=%+,;~@"))


def _badge(status: str) -> str:
    return f'<span class="status {_STATUS_CLASS.get(status, "na")}">{_e(status)}</span>'


def render_report(report: ControlReport, tables: Sequence[EvidenceTable], *,
                  model_pages: Sequence[tuple[str, str]] = (),
                  table_files: Mapping[str, Sequence[tuple[str, str]]] | None = None,
                  generated_at: dt.datetime | None = None, title: str = "Evidence report") -> str:
    """The evidence report as one standalone HTML page.

    Parameters
    ----------
    report
        The controls' assessments (:func:`nbgov.evidence.controls.assess_controls`), which also
        carry the period, the policy judged against and the caller's verification summary.
    tables
        The period's evidence tables (:func:`nbgov.evidence.tables.evidence_tables`).
    model_pages
        ``(model ref, relative href)`` of each model documentation page.
    table_files
        Per table name, ``(label, relative href)`` of its files, e.g.
        ``{"approvals": [("Parquet", "tables/approvals.parquet"), ("SQL", "tables/approvals.sql")]}``.
    generated_at
        When the bundle was made (default: now, UTC).
    title
        The page's heading.

    Raises
    ------
    EvidenceError
        A link is not a relative path (a scheme such as ``https:`` or ``javascript:``, or an
        absolute path).
    """
    generated = (generated_at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    files = dict(table_files or {})
    period = f"{report.start.isoformat()} to {report.end.isoformat()}"
    body = [
        _header(report, title, period, generated),
        _contents(report, bool(model_pages)),
        _matrix(report),
        '<section id="controls"><h2>Controls</h2>',
        *(_control(item) for item in report.assessments),
        "</section>",
        _charts(report, {t.name: t for t in tables}),
    ]
    if model_pages:
        links = "".join(f'<li><a href="{_href(href)}">{_e(ref)}</a></li>' for ref, href in model_pages)
        body.append(f'<section id="models"><h2>Model documentation</h2><ul>{links}</ul></section>')
    body += [_tables(tables, files), _criteria(), f"<footer>Generated by nbgov on "
             f"{_e(generated.strftime('%Y-%m-%d %H:%M UTC'))} from ledger "
             f"{_e(report.verification.ledger_id)}. "
             "Every row of every table carries the seq of the ledger event it comes from; the bundle's "
             "manifest proves each of them against the signed checkpoint.</footer>"]
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"/>'
            '<meta name="viewport" content="width=device-width, initial-scale=1"/>'
            f"<title>{_e(title)}: {_e(period)}</title><style>{_CSS}</style></head>"
            f'<body><main>{"".join(body)}</main></body></html>\n')


def _header(report: ControlReport, title: str, period: str, generated: dt.datetime) -> str:
    v = report.verification
    counts = {status: sum(a.status == status for a in report.assessments)
              for status in (EVIDENCED, PARTIAL, MISSING, NOT_APPLICABLE)}
    summary = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    if v.ok:
        verdict = (f'<div class="verdict ok">The ledger verifies: {v.events} events, every leaf hash, the '
                   f"hash chain and the Merkle tree intact (head seq {v.head_seq}).</div>")
    else:
        problem = v.first_problem or "see nbgov verify"
        verdict = f'<div class="verdict missing">The ledger does NOT verify: {_e(problem)}.</div>'
    checkpoint = (f"{_e(v.checkpoint_origin or '')} size {v.checkpoint_size}" if v.checkpoint_size is not None
                  else "none given")
    root = f'<br/><span class="mono">root {_e(v.checkpoint_root)}</span>' if v.checkpoint_root else ""
    sha = f'<br/><span class="mono">sha256 {_e(report.policy.sha256)}</span>' if report.policy.sha256 else ""
    fields = [("Period (UTC, inclusive)", _e(period)),
              ("Ledger", f'<span class="mono">{_e(v.ledger_id)}</span>'),
              ("Signed checkpoint", checkpoint + root),
              ("Policy judged against", _e(report.policy.source) + sha),
              ("Generated", _e(generated.strftime("%Y-%m-%d %H:%M UTC"))), ("Controls", _e(summary))]
    meta = "".join(f"<div><dt>{name}</dt><dd>{value}</dd></div>" for name, value in fields)
    return (f'<header id="top"><h1>{_e(title)}</h1><p class="small">SOC 2 evidence from the nbgov ledger</p>'
            f'<dl class="meta">{meta}</dl>{verdict}</header>')


def _contents(report: ControlReport, models: bool) -> str:
    items = ['<li><a href="#matrix">Criteria and controls</a></li>',
             '<li><a href="#controls">Controls</a><ol>']
    items += [f'<li><a href="#control-{_e(a.control.id)}">{_e(a.control.name)}</a> {_badge(a.status)}</li>'
              for a in report.assessments]
    items += ["</ol></li>", '<li><a href="#charts">Charts</a></li>']
    if models:
        items.append('<li><a href="#models">Model documentation</a></li>')
    items += ['<li><a href="#tables">Evidence tables</a></li>', '<li><a href="#criteria">Criteria</a></li>']
    return f'<nav aria-label="Contents"><h2>Contents</h2><ol>{"".join(items)}</ol></nav>'


def _short(status: str) -> str:
    return "n/a" if status == NOT_APPLICABLE else status


def _matrix(report: ControlReport) -> str:
    cols = ('<colgroup><col class="criterion"/><col class="overall"/>' + "<col/>" * len(CONTROLS)
            + "</colgroup>")
    head = "".join(f'<th scope="col"><a href="#control-{_e(c.id)}" title="{_e(c.name)}">{_e(c.short)}</a>'
                   "</th>" for c in CONTROLS)
    rows = []
    for criterion in CRITERIA:
        cells = []
        for item in report.assessments:
            if criterion.id in item.control.criteria:
                cls = _STATUS_CLASS[item.status]
                cells.append(f'<td class="cell {cls}" title="{_e(item.status)}">{_e(_short(item.status))}'
                             "</td>")
            else:
                cells.append('<td class="cell"></td>')
        overall = report.criterion_status(criterion.id)
        rows.append(f'<tr><th scope="row"><a href="#criterion-{_e(criterion.id)}">{_e(criterion.id)}</a> '
                    f'{_e(criterion.title)}</th><td class="cell {_STATUS_CLASS[overall]}">'
                    f'{_e(_short(overall))}</td>{"".join(cells)}</tr>')
    return (f'<section id="matrix"><h2>Criteria and controls</h2><p>Each row is a Trust Services Criterion, '
            "each column one of nbgov's controls; a cell shows how the control mapped to the criterion "
            "stands over the period, and the overall column the weakest of them. Criteria no control speaks "
            f"to are marked {_badge(NOT_ADDRESSED)}: they need evidence from outside nbgov.</p>"
            f'<table class="matrix">{cols}<thead><tr><th scope="col">Criterion</th>'
            f'<th scope="col">Overall</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
            "</section>")


def _control(item: Assessment) -> str:
    control = item.control
    criteria = ", ".join(f'<a href="#criterion-{_e(c)}">{_e(c)}</a>' for c in control.criteria)
    evidence = []
    for found in item.evidence:
        where = ""
        if found.table:
            rows = f" (seq {', '.join(str(s) for s in found.seqs)})" if found.seqs else ""
            where = f' &#8212; <a href="#table-{_e(found.table)}">{_e(found.table)}</a>{_e(rows)}'
        elif found.seqs:
            where = f" &#8212; seq {_e(', '.join(str(s) for s in found.seqs))}"
        evidence.append(f"<li>{_e(found.text)}{where}</li>")
    found_html = f'<ul>{"".join(evidence)}</ul>' if evidence else "<p>No evidence in the period.</p>"
    gaps = (f'<ul class="gaps">{"".join(f"<li>{_e(gap)}</li>" for gap in item.gaps)}</ul>' if item.gaps
            else "<p>No gaps found.</p>")
    return (f'<article class="control" id="control-{_e(control.id)}"><h3>{_e(control.name)} '
            f'{_badge(item.status)}</h3><p>{_e(control.objective)}</p><p class="small">Criteria: {criteria}. '
            "Evidence tables: "
            + ", ".join(f'<a href="#table-{_e(t)}">{_e(t)}</a>' for t in control.tables)
            + f"</p><h4>Evidence</h4>{found_html}<h4>Gaps</h4>{gaps}</article>")


# -- charts -----------------------------------------------------------------------------------------


def _charts(report: ControlReport, tables: Mapping[str, EvidenceTable]) -> str:
    def rows(name: str) -> list[dict[str, Any]]:
        return tables[name].records() if name in tables else []

    charts = [_review_chart(report, rows("review_runs"), rows("missed_runs"))]
    charts += _bias_charts(report, rows("fairness_results"))
    charts += _drift_charts(report, rows("drift_results"))
    charts.append(_decision_chart(rows("approvals")))
    shown = [f'<div class="chart">{svg}</div>' for svg in charts if svg]
    notes = [text for name, text in (("fairness_results", "No bias tests in the period."),
                                     ("drift_results", "No drift tests in the period."),
                                     ("approvals", "No reviewer decisions in the period.")) if not rows(name)]
    note = f'<p class="small">{_e(" ".join(notes))}</p>' if notes else ""
    return f'<section id="charts"><h2>Charts</h2>{note}<div class="charts">{"".join(shown)}</div></section>'


def _buckets(start: dt.date, end: dt.date) -> tuple[list[str], Any]:
    """Category labels for the period and a function from a date to its label."""
    days = (end - start).days + 1
    if days <= 31:
        labels = [(start + dt.timedelta(days=i)).strftime("%d %b") for i in range(days)]
        return labels, lambda day: day.strftime("%d %b")
    if days <= 190:
        def week(day: dt.date) -> str:
            return max(start, day - dt.timedelta(days=day.weekday())).strftime("wk %d %b")
        labels = list(dict.fromkeys(week(start + dt.timedelta(days=i)) for i in range(days)))
        return labels, week
    def month(day: dt.date) -> str:
        return day.strftime("%b %Y")
    return list(dict.fromkeys(month(start + dt.timedelta(days=i)) for i in range(days))), month


def _utc_day(moment: Any) -> dt.date | None:
    if isinstance(moment, dt.datetime):
        return moment.astimezone(dt.UTC).date()
    return moment if isinstance(moment, dt.date) else None


def _review_chart(report: ControlReport, runs: list[dict[str, Any]], missed: list[dict[str, Any]]) -> str:
    labels, bucket = _buckets(report.start, report.end)
    counts = {name: dict.fromkeys(labels, 0) for name, _ in _OUTCOMES}
    events = [(r["status"], _utc_day(r["started_at"])) for r in runs]
    events += [("missed", _utc_day(r["scheduled_for"] or r["detected_at"])) for r in missed]
    for status, day in events:
        if day is not None and bucket(day) in counts.get(status, {}):
            counts[status][bucket(day)] += 1
    series = [(name, [counts[name][label] for label in labels]) for name, _ in _OUTCOMES
              if any(counts[name].values())]
    return stacked_bar_chart_svg(labels, series, colours=dict(_OUTCOMES), title="Review runs by outcome",
                                 y_label="runs", width=600, height=300)


def _bias_charts(report: ControlReport, rows: list[dict[str, Any]]) -> list[str]:
    rules = report.policy.policy.fairness
    charts = []
    for model in sorted({str(r["model"]) for r in rows}):
        for bias_limit in FAIRNESS_LIMITS:
            column = bias_limit.measure
            words = column.replace("_", " ")
            limit = getattr(rules, bias_limit.rule)
            lines: dict[str, list[tuple[Any, Any]]] = {}
            for r in rows:
                if str(r["model"]) == model and r[column] is not None:
                    lines.setdefault(str(r["attribute"]), []).append((r["event_time"], r[column]))
            if not lines or (limit is None and column != "demographic_parity_ratio"):
                continue
            label = None if limit is None else f"policy {bias_limit.side} {limit:g}"
            charts.append(line_chart_svg(list(lines.items()), limit=limit, limit_label=label,
                                         breach=bias_limit.breach,
                                         title=f"{model}: {words}", y_label=words, width=600, height=300))
    return charts


def _drift_charts(report: ControlReport, rows: list[dict[str, Any]]) -> list[str]:
    rules = report.policy.policy.drift
    charts = []
    for model in sorted({str(r["model"]) for r in rows}):
        mine = [r for r in rows if str(r["model"]) == model and r["effect_size"] is not None]
        for name in sorted({str(r["effect_size_name"]) for r in mine}):
            lines: dict[str, list[tuple[Any, Any]]] = {}
            recorded = set()
            for r in mine:
                if str(r["effect_size_name"]) == name:
                    lines.setdefault(str(r["feature"]), []).append((r["event_time"], r["effect_size"]))
                    recorded.add(r["threshold"])
            field = _DRIFT_LIMITS.get(name)
            limit = getattr(rules, field) if field else (recorded.pop() if len(recorded) == 1 else None)
            charts.append(line_chart_svg(list(lines.items()), limit=limit, breach="above",
                                         limit_label=None if limit is None else f"policy maximum {limit:g}",
                                         title=f"{model}: drift ({name})", y_label=name, width=600,
                                         height=300))
    return charts


def _decision_chart(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    models = sorted({str(r["model"]) for r in rows})
    series = [(name, [sum(1 for r in rows if str(r["model"]) == m and r["decision"] == name) for m in models])
              for name, _ in _DECISIONS]
    return stacked_bar_chart_svg(models, [s for s in series if any(s[1])], colours=dict(_DECISIONS),
                                 title="Reviewers' decisions per model", y_label="decisions", width=600,
                                 height=300)


# -- tables and criteria -----------------------------------------------------------------------------


def _tables(tables: Sequence[EvidenceTable], files: Mapping[str, Sequence[tuple[str, str]]]) -> str:
    parts = ['<section id="tables"><h2>Evidence tables</h2><p>Each table was produced by the SQL in its .sql '
             "file over the ledger's documented views, with the period bound as <code>$from</code> and "
             "<code>$to</code>. <i>Activity</i> tables hold the period's events; <i>in force</i> tables the "
             "state at the period's end (from the latest event about each thing, which may predate the "
             "period).</p>"]
    sections: dict[str, list[EvidenceTable]] = {}
    for table in tables:
        sections.setdefault(table.section or "Other", []).append(table)
    for section, members in sections.items():
        rows = []
        for table in members:
            links = " ".join(f'<a href="{_href(href)}">{_e(label)}</a>'
                             for label, href in files.get(table.name, ()))
            computed = "".join(f"<br/><span class=\"small\">{_e(column)}: {_e(how)}</span>"
                               for column, how in table.computed.items())
            rows.append(f'<tr id="table-{_e(table.name)}"><td><code>{_e(table.name)}</code><br/>'
                        f"{_e(table.title)}</td><td>{_e(table.description)}{computed}</td><td>{_e(table.kind)}</td>"
                        f'<td class="num">{table.rows}</td><td>{links}</td></tr>')
        parts.append(f"<h3>{_e(section)}</h3><table><colgroup><col style=\"width:22%\"/><col/>"
                     '<col style="width:9%"/><col style="width:7%"/><col style="width:14%"/></colgroup>'
                     "<thead><tr><th>Table</th><th>What the rows are</th><th>Kind</th><th>Rows</th>"
                     "<th>Files</th></tr></thead>"
                     f'<tbody>{"".join(rows)}</tbody></table>')
    return "".join(parts) + "</section>"


def _criteria() -> str:
    items = "".join(f'<dt id="criterion-{_e(c.id)}">{_e(c.id)} {_e(c.title)} <span class="small">('
                    f"{_e(c.category)})</span></dt><dd>{_e(c.text)}</dd>" for c in CRITERIA)
    return ('<section id="criteria"><h2>Criteria</h2><p class="small">The criteria of the AICPA Trust '
            "Services Criteria (2017, revised points of focus 2022) that nbgov's evidence speaks to, with "
            f"nbgov's short titles.</p><dl class=\"criteria\">{items}</dl></section>")
