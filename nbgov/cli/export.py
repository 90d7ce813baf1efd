"""Export commands of the ``nbgov`` CLI: the ledger in standard lineage and provenance formats."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click

from nbgov.cli.common import ledger_of as _ledger
from nbgov.errors import NbgovError


def _write(path: Path, text: str) -> None:
    """Write *text* to *path* whole or not at all (a temporary file renamed over it)."""
    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise NbgovError(f"cannot write {path}: {exc.strerror}",
                         hint="check that its folder exists and is writable") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except OSError as exc:
        os.unlink(temporary)
        raise NbgovError(f"cannot write {path}: {exc.strerror}") from None


@click.command("export")
@click.option("--format", "fmt", type=click.Choice(["openlineage", "prov-json"]), required=True,
              help="openlineage: OpenLineage RunEvents as JSON Lines; prov-json: one W3C PROV-JSON document.")
@click.option("--from", "start", metavar="YYYY-MM-DD", help="First day to export (UTC, included).")
@click.option("--to", "end", metavar="YYYY-MM-DD", help="Last day to export (UTC, included).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file (replaced whole) instead of standard output.")
@click.pass_context
def export(ctx: click.Context, fmt: str, start: str | None, end: str | None, out: Path | None) -> None:
    """Export the ledger's sessions, cells, datasets, models and evaluations as lineage.

    OpenLineage: one RunEvent per line (a job per notebook, a child run per cell execution, the
    datasets read and written and the models fitted, with nbgov's fingerprints), the form
    OpenLineage's file transport writes; PROV-JSON: one document of entities, activities,
    agents and their relations. --from/--to select whole runs: every run (session, cell) that
    overlaps the period, with all its events.

    \b
    Example:
      nbgov export --format openlineage --from 2026-01-01 --to 2026-03-31 --out q1.jsonl
      nbgov export --format prov-json --out provenance.json
    """
    from nbgov.export.facts import Period
    from nbgov.export.openlineage import openlineage_events, to_jsonl
    from nbgov.export.prov import prov_document, to_json

    period = Period.parse(start, end)
    if fmt == "openlineage":
        events = openlineage_events(_ledger(ctx), period)
        text, what = to_jsonl(events), f"{len(events)} OpenLineage event(s)"
    else:
        document = prov_document(_ledger(ctx), period)
        text = to_json(document)
        records = sum(len(document.get(kind, {})) for kind in ("entity", "activity", "agent"))
        what = f"a PROV document of {records} record(s)"
    if out is None:
        click.echo(text, nl=False)
        return
    _write(out, text)
    click.echo(f"wrote {what} to {out}", err=True)


COMMANDS: tuple[click.Command, ...] = (export,)
