"""The model documentation page as standalone HTML or as Markdown.

:func:`render_html` writes one self-contained page: inline CSS, inline SVG pictures (the lineage
from :mod:`nbgov.render.svg`, bias measures over time from :mod:`nbgov.render.charts`, and per-group
selection rates against the policy's floor from :mod:`nbgov.render.model_sections`), no scripts and
no external resources; every value is escaped. It is well-formed XML as well as HTML, and prints
cleanly. :func:`render_markdown` writes the same content as Markdown, escaped so that recorded
text cannot turn into markup. The content itself, section by section, comes from
:mod:`nbgov.render.model_sections`.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any

from nbgov.render.model_document import ModelDocument
from nbgov.render.model_sections import (
    NONE,
    NOT_XML,
    SECTIONS,
    Block,
    Code,
    Lines,
    Status,
    group_rates_svg,
    page_sections,
    page_summary,
    plain,
)

__all__ = ["group_rates_svg", "render_html", "render_markdown"]

_CSS = """
:root { color-scheme: light; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1f2328;
  background: #fff; max-width: 1100px; margin: 0 auto; padding: 24px 32px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; } h3 { font-size: 16px; margin: 22px 0 6px; overflow-wrap: anywhere; }
h2 { font-size: 20px; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; margin-top: 36px; }
.sub, .muted, .none, figcaption { color: #57606a; } figcaption { font-size: 13px; }
figure { margin: 8px 0 16px; } svg { max-width: 100%; height: auto; }
.badges span { display: inline-block; border: 1px solid #d0d7de; border-radius: 12px; padding: 1px 10px;
  margin: 6px 6px 0 0; font-size: 13px; }
nav ol { columns: 3; font-size: 14px; padding-left: 20px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 8px 0; }
dt { font-weight: 600; color: #57606a; } dd { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; }
code { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; word-break: break-all; }
ul.gaps { border: 2px solid #9a6700; background: #fff8c5; padding: 8px 16px 8px 36px; border-radius: 6px; }
.ok, .pass, .granted, .current, .verifies, .approved, .succeeded { color: #1a7f37; font-weight: 600; }
.fail, .failed, .denied, .rejected, .rejection-denied, .does-not-verify, .not-current, .drifted, .timed-out,
.kernel-died { color: #cf222e; font-weight: 600; }
.warn, .unjudged, .running { color: #9a6700; font-weight: 600; }
footer { margin-top: 40px; font-size: 12px; color: #57606a; border-top: 1px solid #d0d7de; padding-top: 8px; }
@page { margin: 14mm; }
@media print {
  body { font-size: 11pt; max-width: none; padding: 0; } nav { display: none; } h2 { break-after: avoid; }
  tr, figure, dl { break-inside: avoid; } thead { display: table-header-group; }
}
"""




# -- HTML -------------------------------------------------------------------------------------------


def _h(value: Any) -> str:
    """A part or cell as escaped HTML."""
    if isinstance(value, Code):
        return f"<code>{escape(plain(value.value))}</code>" if value.value is not None else _h(None)
    if isinstance(value, Status):
        word = plain(value.value)
        return f'<span class="{re.sub(r"[^a-z]+", "-", word.lower()).strip("-")}">{escape(word)}</span>'
    if isinstance(value, Lines):
        return "<br/>".join(_h(part) for part in value.parts if part is not None) or _h(None)
    if value is None:
        return f'<span class="none">{NONE}</span>'
    return escape(plain(value))


def _html_block(block: Block) -> str:
    kind = block[0]
    if kind == "h3":
        return f"<h3>{escape(plain(block[1]))}</h3>"
    if kind == "p":
        css = f' class="{block[2]}"' if block[2] else ""
        return f"<p{css}>" + "".join(_h(part) for part in block[1]) + "</p>"
    if kind == "pairs":
        return "<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{_h(v)}</dd>" for k, v in block[1]) + "</dl>"
    if kind == "list":
        return f'<ul class="{block[2]}">' + "".join(f"<li>{_h(item)}</li>" for item in block[1]) + "</ul>"
    if kind == "table":
        head = "".join(f"<th>{escape(h)}</th>" for h in block[1])
        body = "".join("<tr>" + "".join(
            f'<td class="num">{_h(c)}</td>' if isinstance(c, (int, float)) and not isinstance(c, bool)
            else f"<td>{_h(c)}</td>" for c in row) + "</tr>" for row in block[2])
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f"<figure>{block[1]}<figcaption>{escape(plain(block[2]))}</figcaption></figure>"  # SVG, escaped


def render_html(doc: ModelDocument) -> str:
    """The documentation page of *doc* as one standalone HTML document (also well-formed XML)."""
    intro, badges, footer = page_summary(doc)
    nav = "".join(f'<li><a href="#{anchor}">{escape(title)}</a></li>' for anchor, title in SECTIONS)
    sections = "".join(f'<section id="{anchor}"><h2>{escape(title)}</h2>'
                       + "".join(_html_block(b) for b in blocks) + "</section>"
                       for anchor, title, blocks in page_sections(doc))
    return ('<!DOCTYPE html>\n<html xmlns="http://www.w3.org/1999/xhtml" lang="en"><head>'
            '<meta charset="utf-8"/><meta name="viewport" content="width=device-width, initial-scale=1"/>'
            f"<title>Model documentation: {escape(plain(doc.ref))}</title><style>{_CSS}</style></head><body>"
            f"<header><h1>Model documentation: {escape(plain(doc.ref))}</h1>"
            f'<p class="sub">{escape(plain(intro))}</p><div class="badges">'
            + "".join(f"<span>{escape(plain(b))}</span>" for b in badges)
            + f"</div></header><nav><ol>{nav}</ol></nav>{sections}"
            f"<footer><p>{escape(plain(footer))}</p></footer></body></html>\n")


# -- Markdown ---------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~#])")


def _md_text(text: str) -> str:
    """Text that Markdown shows as written: HTML and Markdown characters escaped, one line."""
    text = escape(NOT_XML.sub("\ufffd", text), quote=False)
    return _MD_SPECIAL.sub(r"\\\1", text).replace("\r", "").replace("\n", "<br>")


def _m(value: Any) -> str:
    if isinstance(value, Code):
        text = plain(value.value).replace("\n", " ")
        if value.value is None or "`" in text:
            return _m(value.value)
        return "`" + text.replace("|", "\\|") + "`"
    if isinstance(value, Status):
        return f"**{_md_text(plain(value.value))}**"
    if isinstance(value, Lines):
        return "<br>".join(_m(part) for part in value.parts if part is not None) or NONE
    return _md_text(plain(value))


def _md_block(block: Block) -> str:
    kind = block[0]
    if kind == "h3":
        return f"### {_m(block[1])}"
    if kind == "p":
        return "".join(_m(part) for part in block[1])
    if kind == "pairs":
        return "| | |\n|---|---|\n" + "\n".join(f"| **{_md_text(k)}** | {_m(v)} |" for k, v in block[1])
    if kind == "list":
        return "\n".join(f"- {_m(item)}" for item in block[1])
    if kind == "table":
        head = "| " + " | ".join(_md_text(h) for h in block[1]) + " |\n|" + "---|" * len(block[1])
        return head + "".join("\n| " + " | ".join(_m(c) for c in row) + " |" for row in block[2])
    return f"*{_md_text(plain(block[2]))} (picture in the HTML page)*"


def render_markdown(doc: ModelDocument) -> str:
    """The documentation page of *doc* as Markdown (recorded text escaped, pictures left out)."""
    intro, badges, footer = page_summary(doc)
    parts = [f"# Model documentation: {_md_text(doc.ref)}", _md_text(intro), " \u00b7 ".join(
        _md_text(b) for b in badges)]
    for _, title, blocks in page_sections(doc):
        parts.append(f"## {_md_text(title)}")
        parts.extend(_md_block(b) for b in blocks)
    parts.append("---\n" + _md_text(footer))
    return "\n\n".join(parts) + "\n"
