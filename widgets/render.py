"""HTML pieces of the governance panel: its stylesheet, tables, badges and messages (all escaped)."""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["STYLE", "badge", "message", "short", "table"]

STYLE = """<style>
.nbgov-panel { font-family: var(--jp-ui-font-family, system-ui, sans-serif); font-size: 13px;
  color: var(--jp-ui-font-color1, #1f1f1f); max-width: 100%; box-sizing: border-box; }
.nbgov-panel .nbgov-scroll { max-width: 100%; overflow-x: auto; }
.nbgov-panel table.nbgov-table { border-collapse: collapse; margin: 4px 0 10px 0; width: 100%;
  table-layout: auto; }
.nbgov-panel table.nbgov-table th { text-align: left; font-weight: 600; padding: 3px 8px;
  border-bottom: 1px solid #bbb; white-space: nowrap; }
.nbgov-panel table.nbgov-table td { padding: 3px 8px; border-bottom: 1px solid #e3e3e3;
  vertical-align: top; overflow-wrap: anywhere; line-height: 1.4; }
.nbgov-panel table.nbgov-table td.nbgov-col-status, .nbgov-panel table.nbgov-table td.nbgov-col-code,
.nbgov-panel table.nbgov-table td.nbgov-col-decision, .nbgov-panel table.nbgov-table td.nbgov-col-direction {
  white-space: nowrap; overflow-wrap: normal; }
.nbgov-panel .nbgov-badge { display: inline-block; padding: 0 6px; border-radius: 8px; font-size: 12px;
  line-height: 1.5; font-weight: 600; color: #fff; white-space: nowrap; background: #57606a; }
.nbgov-panel .nbgov-pass, .nbgov-panel .nbgov-succeeded, .nbgov-panel .nbgov-granted,
.nbgov-panel .nbgov-approved { background: #1b7a3d; }
.nbgov-panel .nbgov-fail, .nbgov-panel .nbgov-failed, .nbgov-panel .nbgov-denied,
.nbgov-panel .nbgov-rejected, .nbgov-panel .nbgov-timed_out, .nbgov-panel .nbgov-kernel_died,
.nbgov-panel .nbgov-rejection.denied { background: #b3261e; }
.nbgov-panel .nbgov-warn, .nbgov-panel .nbgov-running, .nbgov-panel .nbgov-missed,
.nbgov-panel .nbgov-trained, .nbgov-panel .nbgov-validated { background: #8a5a00; }
.nbgov-panel .nbgov-muted { color: #5f5f5f; }
.nbgov-panel .nbgov-message { padding: 6px 8px; border-radius: 4px; margin: 6px 0; }
.nbgov-panel .nbgov-message.ok { background: #e6f4ea; border: 1px solid #1b7a3d; }
.nbgov-panel .nbgov-message.refused { background: #fce8e6; border: 1px solid #b3261e; }
.nbgov-panel h4 { margin: 8px 0 4px 0; font-size: 14px; }
</style>"""


# -- small HTML helpers --------------------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if hasattr(value, "strftime"):
        return str(value.strftime("%Y-%m-%d %H:%M"))
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v) for v in value)
    return str(value)


def short(value: Any, keep: int = 12) -> str:
    """A long id or fingerprint shortened, the full value in a tooltip."""
    text = _text(value)
    if len(text) <= keep:
        return html.escape(text)
    return f'<span title="{html.escape(text)}">{html.escape(text[:keep])}…</span>'


def badge(status: Any) -> str:
    text = _text(status)
    css = "-".join(text.split()) or "none"
    return f'<span class="nbgov-badge nbgov-{html.escape(css)}">{html.escape(text)}</span>'


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]],
          *, cells: Mapping[str, Callable[[Any], str]] | None = None, empty: str = "nothing yet") -> str:
    """An HTML table of *rows*; *columns* are (key, heading); *cells* format a column as HTML."""
    if not rows:
        return f'<p class="nbgov-muted">{html.escape(empty)}</p>'
    cells = cells or {}
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title in columns)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="nbgov-col-{html.escape(key)}">'
            f"{cells[key](row.get(key)) if key in cells else html.escape(_text(row.get(key)))}</td>"
            for key, _ in columns) + "</tr>"
        for row in rows)
    return (f'<div class="nbgov-scroll"><table class="nbgov-table"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def message(text: str, *, ok: bool, hint: str | None = None) -> str:
    more = f'<br><span class="nbgov-muted">{html.escape(hint)}</span>' if hint else ""
    kind = "ok" if ok else "refused"
    return f'<div class="nbgov-message {kind}" data-outcome="{kind}">{html.escape(text)}{more}</div>'
