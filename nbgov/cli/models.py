"""Model documentation commands of the ``nbgov`` CLI: ``nbgov model describe`` and ``nbgov model doc``.

Each command parses its options, makes one core call (:mod:`nbgov.evidence.model_doc`) and renders the
result.
"""

from __future__ import annotations

from pathlib import Path

import click

from nbgov.cli.common import ledger_of as _ledger
from nbgov.errors import NbgovError


@click.group("model")
def model() -> None:
    """Model documentation: what a model is for, and its documentation page."""


@model.command("describe")
@click.argument("ref", metavar="MODEL[@VERSION]")
@click.option("--intended-use", required=True, help="What the model is for and who uses its output.")
@click.option("--out-of-scope", default=None, help="Uses it must not be put to.")
@click.option("--limitations", default=None, help="Known limitations (data, populations, conditions).")
@click.option("--owner", default=None, help="The accountable owner (a person or team).")
@click.option("--contact", default=None, help="How to reach the owner.")
@click.pass_context
def describe(ctx: click.Context, ref: str, intended_use: str, out_of_scope: str | None,
             limitations: str | None, owner: str | None, contact: str | None) -> None:
    """Record what MODEL is for (every version until described again), or MODEL@VERSION.

    A version's own description wins over the model's; a later description replaces an earlier
    one. The documentation page (nbgov model doc) shows the one in force.

    \b
    Example:
      nbgov model describe credit_risk --intended-use "pre-screening of consumer loan applications" \\
          --out-of-scope "final credit decisions without human review" \\
          --limitations "trained on 2019-2024 applications from one region" --owner credit-risk-team
    """
    from nbgov.governance.descriptions import describe_model

    ledger = _ledger(ctx)
    describe_model(ledger, ref, intended_use=intended_use, out_of_scope=out_of_scope,
                   limitations=limitations, owner=owner, contact=contact)
    ledger.ingest()
    scope = "this version" if "@" in ref else "every version"
    click.echo(f"recorded the description of {ref} ({scope})")


@model.command("doc")
@click.argument("ref", metavar="MODEL[@VERSION]")
@click.option("--format", "fmt", type=click.Choice(["html", "markdown"]), default=None,
              help="Page format (default: markdown for an --out ending in .md, else html).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the page to this file (default: standard output).")
@click.pass_context
def doc(ctx: click.Context, ref: str, fmt: str | None, out: Path | None) -> None:
    """Write the documentation page of MODEL@VERSION (MODEL: its latest version).

    Identity, intended use, training data and its provenance, parameters, evaluation (metrics,
    bias tests per group, drift), lifecycle, approvals with their signatures checked, open risks,
    vendors and reviews, all from the ledger; every missing fact is listed under Gaps. Nothing is
    recorded.

    \b
    Example:
      nbgov model doc credit_risk@3 --out credit_risk-3.html
      nbgov model doc credit_risk --format markdown > MODEL_CARD.md
    """
    from nbgov.evidence.model_doc import model_document, render_html, render_markdown

    if fmt is None:
        fmt = "markdown" if out is not None and out.suffix.lower() in (".md", ".markdown") else "html"
    document = model_document(_ledger(ctx), ref)
    page = render_html(document) if fmt == "html" else render_markdown(document)
    if out is None:
        click.echo(page, nl=False)
        return
    try:
        out.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise NbgovError(f"cannot write {out}: {exc.strerror}") from None
    click.echo(f"wrote {out}: {document.ref}, {len(document.gaps)} gap(s)")


COMMANDS: tuple[click.Command, ...] = (model,)
