"""The evidence bundle of an audit period: report, tables, proofs and a standalone verifier.

``nbgov evidence --from DATE --to DATE --out DIR`` writes::

    DIR/
      report.html          controls mapped to SOC 2 criteria, evidence, gaps and charts
      models/*.html        one documentation page per model version active in the period
      tables/NAME.parquet  the rows behind the report (every row carries its event's seq) ...
      tables/NAME.sql      ... and the exact SQL (with its parameters) that produced them
      events.parquet       every event a table row names, exactly as hashed (seq, ingest time, body)
      checkpoint.note      the signed checkpoint (C2SP) cut for the bundle
      manifest.json        row counts, SHA-256 of every file, and each event's inclusion proof
      manifest.sig         the manifest's digest, signed (C2SP signed note) by the exporter
      verify_bundle.py     the verifier: Python 3 and the ``cryptography`` package only

The bundle is written into a temporary directory beside DIR and renamed into place at the end, so
an interrupted export leaves no half bundle behind.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from nbgov.errors import NbgovError
from nbgov.ledger.envelope import format_time

if TYPE_CHECKING:
    from nbgov.ledger.facade import Ledger

__all__ = ["BUNDLE_FORMAT", "BundleResult", "write_bundle"]

BUNDLE_FORMAT = "nbgov-evidence/1"
_MANIFEST_NOTE = "nbgov-evidence-manifest"
#: Called with (step description, done, total).
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class BundleResult:
    """What was written."""

    path: Path
    tables: int
    rows: int
    events: int
    models: int
    checkpoint_size: int
    controls: dict[str, str]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "model"


def _sql_file(table: Any) -> str:
    params = "\n".join(f"--   ${name} = {json.dumps(value, default=str)}"
                       for name, value in table.params.items())
    computed = "".join(f"\n-- column {col!r} is computed after the query: {how}"
                       for col, how in table.computed.items())
    return (f"-- {table.title}: {table.description}\n-- parameters (bound, DuckDB syntax):\n{params}"
            f"{computed}\n{table.sql.strip()}\n")


def write_bundle(
    ledger: Ledger,
    start: dt.date,
    end: dt.date,
    out: Path,
    *,
    progress: Progress | None = None,
) -> BundleResult:
    """Write the evidence bundle of ``start`` .. ``end`` (inclusive UTC days) to *out*.

    Raises
    ------
    NbgovError
        *out* exists and is not an empty directory, cannot be written, or the period is invalid.
    """
    from nbgov.errors import EvidenceError
    from nbgov.evidence.controls import VerificationSummary, assess_controls
    from nbgov.evidence.parquet import write_table
    from nbgov.evidence.report import render_report
    from nbgov.evidence.tables import evidence_tables
    from nbgov.ledger.integrity.checkpoints import ledger_keys, ledger_origin, stored_checkpoints
    from nbgov.ledger.integrity.notes import VerifierKey, parse_checkpoint, sign_note
    from nbgov.ledger.integrity.signing import load_or_create_key
    from nbgov.ledger.schema import migrations

    def step(what: str, done: int = 0, total: int = 1) -> None:
        if progress is not None:
            progress(what, done, total)

    if start > end:
        raise EvidenceError(f"the period starts ({start}) after it ends ({end})")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise NbgovError(f"{out} already exists and is not an empty directory",
                         hint="choose a new directory for the bundle")
    parent = out.parent if str(out.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=parent))
    except OSError as exc:
        raise NbgovError(f"cannot write the bundle under {parent}: {exc.strerror}") from None
    try:
        # 1. The tables, then a checkpoint certifying every event they name, then verification.
        step("tables")
        tables = evidence_tables(ledger, start, end)
        step("checkpoint")
        key = load_or_create_key(ledger.settings.key_dir, ledger.actor.id)
        note = ledger.checkpoint("manual")
        if note is None:
            raise NbgovError("the ledger is empty: there is no evidence to bundle")
        checkpoint = parse_checkpoint(note.split("\n\n")[0] + "\n")
        step("verify")
        report = ledger.verify(progress=(lambda d, t: step("verify", d, t)))
        with ledger.reader(ingest=False) as con:
            ledger_id = migrations.ledger_id(con) or ""
            latest = stored_checkpoints(con)[-1]
            keys = ledger_keys(con, ledger_origin(ledger_id))
        origin = checkpoint.origin
        verification = VerificationSummary.from_report(
            report, ledger_id, checkpoint_size=checkpoint.size, checkpoint_origin=origin,
            checkpoint_root=base64.b64encode(checkpoint.root).decode())

        # 2. The controls judged over the tables; the tables' files.
        controls = assess_controls(ledger, start, end, tables, verification)
        (work / "tables").mkdir()
        table_entries = []
        table_files: dict[str, list[tuple[str, str]]] = {}
        wanted: set[int] = set()
        for index, table in enumerate(tables):
            step("table files", index, len(tables))
            parquet, sql = f"tables/{table.name}.parquet", f"tables/{table.name}.sql"
            write_table(table.data, work / parquet)
            (work / sql).write_text(_sql_file(table), encoding="utf-8")
            seqs = table.seqs()
            wanted.update(s for s in seqs if s <= checkpoint.size)
            table_files[table.name] = [("Parquet", parquet), ("SQL", sql)]
            table_entries.append({
                "name": table.name, "path": parquet, "sha256": _sha256(work / parquet),
                "rows": table.rows, "sql_path": sql, "sql_sha256": _sha256(work / sql),
                "seq_column": "seq" if "seq" in table.data.column_names else None})
        beyond = sorted({s for t in tables for s in t.seqs()} - wanted)
        if beyond:
            raise NbgovError(f"rows name events after the checkpoint (seq {beyond[0]}): the ledger "
                             "grew while the bundle was made; run the export again")

        # 3. Model documentation pages.
        pages = _model_pages(ledger, tables, work, step)

        # 4. The events behind the rows, and an inclusion proof of each.
        step("proofs")
        events, proofs = _events_and_proofs(ledger, sorted(wanted), checkpoint.size, step)
        write_table(events, work / "events.parquet")

        # 5. The report, the verifier and the signed manifest.
        step("report")
        html = render_report(controls, tables, model_pages=[(ref, href) for ref, href, _ in pages],
                             table_files=table_files)
        (work / "report.html").write_text(html, encoding="utf-8")
        verifier = resources.files("nbgov.evidence").joinpath("verifier.py").read_text(encoding="utf-8")
        (work / "verify_bundle.py").write_text(verifier, encoding="utf-8")
        (work / "checkpoint.note").write_text(note, encoding="utf-8")
        trusted = {VerifierKey(origin, key.public_raw).text()}  # the exporter signs the manifest
        if latest.key_id in keys:
            trusted.add(keys[latest.key_id][1].text())  # whoever signed the checkpoint
        files = ["report.html", *(href for _, href, _ in pages)]
        manifest = {
            "format": BUNDLE_FORMAT,
            "origin": origin,
            "ledger_id": ledger_id,
            "period": {"from": start.isoformat(), "to": end.isoformat()},
            "created_at": format_time(int(dt.datetime.now(dt.UTC).timestamp() * 1e9)),
            "created_by": ledger.actor.id,
            "checkpoint": {"path": "checkpoint.note", "size": checkpoint.size,
                           "root": base64.b64encode(checkpoint.root).decode()},
            "verifier_keys": sorted(trusted),
            "events": {"path": "events.parquet", "sha256": _sha256(work / "events.parquet"),
                       "rows": events.num_rows, "proofs": proofs},
            "tables": table_entries,
            "files": [{"path": f, "sha256": _sha256(work / f)} for f in files],
        }
        manifest_bytes = (json.dumps(manifest, indent=1) + "\n").encode()
        (work / "manifest.json").write_bytes(manifest_bytes)
        digest_text = f"{_MANIFEST_NOTE}\n{hashlib.sha256(manifest_bytes).hexdigest()}\n"
        (work / "manifest.sig").write_text(sign_note(digest_text, origin, key.private), encoding="utf-8")
        os.chmod(work, 0o755)
        if out.exists():
            out.rmdir()
        work.rename(out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    step("done", 1, 1)
    return BundleResult(out, len(tables), sum(t.rows for t in tables), events.num_rows, len(pages),
                        checkpoint.size, {a.control.id: a.status for a in controls.assessments})


def _model_pages(ledger: Ledger, tables: Sequence[Any], work: Path,
                 step: Callable[..., None]) -> list[tuple[str, str, str]]:
    """A documentation page for each model version fitted, evaluated or decided in the period."""
    from nbgov.evidence.model_doc import model_document
    from nbgov.render.model_page import render_html

    refs: set[tuple[str, int]] = set()
    for table in tables:
        names = table.data.column_names
        if "model" in names and "version" in names:
            for model, version in zip(table.data.column("model").to_pylist(),
                                      table.data.column("version").to_pylist()):
                if model is not None and version is not None:
                    try:
                        refs.add((str(model), int(version)))
                    except (TypeError, ValueError):
                        continue
    pages = []
    if refs:
        (work / "models").mkdir()
    for index, (model, version) in enumerate(sorted(refs)):
        step("model pages", index, len(refs))
        try:
            doc = model_document(ledger, model, version)
        except NbgovError:
            continue  # a name in a table that is not a captured model version
        href = f"models/{_safe(model)}-v{version}.html"
        (work / href).write_text(render_html(doc), encoding="utf-8")
        pages.append((f"{model}@{version}", href, model))
    return pages


def _events_and_proofs(ledger: Ledger, seqs: list[int], size: int,
                       step: Callable[..., None]) -> tuple[pa.Table, list[list[Any]]]:
    from nbgov.ledger.integrity.merkle import inclusion_proof
    from nbgov.ledger.integrity.tree_store import loaded_tree

    with ledger.reader(ingest=False) as con:
        con.register("nbgov_wanted", pa.table({"seq": pa.array(seqs, pa.int64())}))
        try:
            rows = con.execute(
                "SELECT e.seq, epoch_us(e.ingested_at), decode(e.body) "
                "FROM event_log e JOIN nbgov_wanted w USING (seq) ORDER BY e.seq").fetchall()
        finally:
            con.unregister("nbgov_wanted")
        tree = loaded_tree(con, size)
    proofs: list[list[Any]] = []
    for index, (seq, _, _) in enumerate(rows):
        if index % 1000 == 0:
            step("proofs", index, len(rows))
        path = inclusion_proof(tree, int(seq) - 1, size)
        proofs.append([int(seq), [base64.b64encode(h).decode() for h in path]])
    table = pa.table({
        "seq": pa.array([int(r[0]) for r in rows], pa.int64()),
        "ingested_at": pa.array([format_time(int(r[1]) * 1000) for r in rows], pa.string()),
        "body": pa.array([r[2] for r in rows], pa.string()),
    })
    return table, proofs
