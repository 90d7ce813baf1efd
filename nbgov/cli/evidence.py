"""Commands for evidence an auditor can check: signed checkpoints, proofs, evidence bundles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from nbgov.cli.common import DOCUMENT, ProgressBar, output_format
from nbgov.cli.common import ledger_of as _ledger
from nbgov.errors import NbgovError


@click.group()
def checkpoint() -> None:
    """Signed checkpoints (C2SP tlog-checkpoint notes) of the ledger's Merkle tree.

    A checkpoint is cut at the end of every notebook session and review run, on request, and
    by any ingest once `checkpoint_interval` has passed. Keep exported ones where the ledger's
    owner cannot rewrite them (a git repository, a WORM bucket, an email).
    """


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise NbgovError(f"cannot write {path}: {exc.strerror}") from None


@checkpoint.command("export")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def checkpoint_export(ctx: click.Context, path: Path) -> None:
    """Write the latest signed checkpoint to PATH (cutting one first if anything was recorded
    since the last).

    \b
    Example:
      nbgov checkpoint export /mnt/worm/nbgov-2026-11-29.note
      nbgov verify --against /mnt/worm/nbgov-2026-11-29.note
    """
    from nbgov.ledger.integrity.notes import parse_checkpoint

    note = _ledger(ctx).checkpoint("manual")
    if note is None:
        raise NbgovError("the ledger is empty: nothing to certify", hint="run `nbgov init` first")
    _write(path, note)
    cp = parse_checkpoint(note.split("\n\n")[0] + "\n")
    click.echo(f"wrote the checkpoint of {cp.size} events ({cp.origin}) to {path}")


@checkpoint.command("list")
@output_format(*DOCUMENT)
@click.pass_context
def checkpoint_list(ctx: click.Context, fmt: str) -> None:
    """The recorded checkpoints, oldest first.

    \b
    Example:
      nbgov checkpoint list
    """
    from nbgov.ledger.integrity.checkpoints import stored_checkpoints

    with _ledger(ctx).reader() as con:
        found = stored_checkpoints(con)
    for cp in found:
        if fmt == "json":  # one JSON object per checkpoint
            click.echo(json.dumps({"seq": cp.seq, "time": cp.time, "actor": cp.actor, "size": cp.size,
                                   "root": cp.root, "reason": cp.reason, "key_id": cp.key_id}))
        else:
            click.echo(f"seq {cp.seq:>8}  {cp.time}  size {cp.size:>8}  {cp.reason:<11}  {cp.actor}")
    if not found and fmt != "json":
        click.echo("no checkpoints yet (`nbgov checkpoint export FILE` cuts one)")


@checkpoint.command("keys")
@click.pass_context
def checkpoint_keys(ctx: click.Context) -> None:
    """Print the verifier keys (NAME+ID+KEY) of everyone who signed a checkpoint, one per line:
    hand them to an auditor through a channel other than the ledger.

    \b
    Example:
      nbgov checkpoint keys > nbgov-keys.txt
    """
    from nbgov.ledger.integrity.checkpoints import signer_keys
    from nbgov.ledger.schema import migrations

    with _ledger(ctx).reader() as con:
        signers = signer_keys(con, migrations.ledger_id(con) or "")
    for actor, key in signers:
        click.echo(f"{key.text()}  # {actor}")


@click.command()
@click.argument("seq", type=click.IntRange(min=1))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the proof (JSON).")
@click.pass_context
def prove(ctx: click.Context, seq: int, out: Path) -> None:
    """Write a self-contained proof that the event at SEQ is in the ledger: the event as hashed,
    its RFC 9162 audit path and the signed checkpoint it leads to.

    \b
    Example:
      nbgov prove 1234 --out approval-1234.proof.json
      nbgov verify-proof approval-1234.proof.json --key nbgov-keys.txt
    """
    from nbgov.ledger.integrity.proofs import make_proof

    proof = make_proof(_ledger(ctx), seq)
    _write(out, json.dumps(proof, indent=2) + "\n")
    click.echo(f"wrote the proof of seq {seq} ({proof['summary']['type']}) against the checkpoint "
               f"of {proof['tree_size']} events to {out}")


@click.command("verify-proof")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--key", "keys", multiple=True, metavar="VKEY",
              help="A trusted verifier key (NAME+ID+KEY, or a file of them); repeatable. Without "
                   "it the keys inside the proof file are used.")
@click.pass_context
def verify_proof(ctx: click.Context, path: Path, keys: tuple[str, ...]) -> None:
    """Check a proof from `nbgov prove` offline (no ledger needed); exit 0 only if it holds.

    \b
    Example:
      nbgov verify-proof approval-1234.proof.json --key nbgov-keys.txt
    """
    from nbgov.ledger.integrity.proofs import check_proof, read_keys, read_proof

    result = check_proof(read_proof(path), read_keys(keys))
    what = result.event.get("type", "event")
    click.echo(f"ok: seq {result.seq} ({what} by {result.event.get('actor', {}).get('id', '?')}) is in "
               f"the tree of {result.checkpoint.size} events of {result.checkpoint.origin}, signed by "
               f"{result.signer.name}+{result.signer.key_id.hex()}")
    if result.keys_from_file:
        click.echo("warning: trusted the key inside the proof file; pass --key with the ledger "
                   "owner's key obtained another way", err=True)


class _Steps:
    """Progress of a long export on stderr: one line per step (a bar for the long ones on a
    terminal)."""

    def __init__(self) -> None:
        self.current = ""
        self.bar: ProgressBar | None = None

    def __call__(self, what: str, done: int, total: int) -> None:
        if what != self.current:
            self.close()
            self.current = what
            if what != "done":
                click.echo(f"  {what} ...", err=True)
            self.bar = ProgressBar(f"  {what}")
        if self.bar is not None and total > 1:
            self.bar(done, total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@click.command()
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), required=True,
              help="First day of the audit period (UTC, inclusive).")
@click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), required=True,
              help="Last day of the audit period (UTC, inclusive).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="A new (or empty) directory for the bundle.")
@click.pass_context
def evidence(ctx: click.Context, start: Any, end: Any, out: Path) -> None:
    """Write the evidence bundle of an audit period: an HTML report mapping SOC 2 criteria and
    controls to the evidence found and what is missing, model documentation pages, the rows as
    Parquet with the SQL behind them, a manifest proving every row's event against a signed
    checkpoint, and verify_bundle.py (Python + cryptography only) for the auditor.

    \b
    Example:
      nbgov evidence --from 2026-01-01 --to 2026-06-30 --out audit-2026-h1
      python audit-2026-h1/verify_bundle.py --key nbgov-keys.txt
    """
    from nbgov.evidence.bundle import write_bundle

    steps = _Steps()
    try:
        result = write_bundle(_ledger(ctx), start.date(), end.date(), out, progress=steps)
    finally:
        steps.close()
    counts: dict[str, int] = {}
    for status in result.controls.values():
        counts[status] = counts.get(status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    click.echo(f"wrote {result.path}: {result.tables} tables ({result.rows} rows), {result.events} "
               f"events proven against the checkpoint of {result.checkpoint_size} events, "
               f"{result.models} model page(s); controls: {summary}")
    click.echo(f"open {result.path / 'report.html'}; "
               f"check it with: python {result.path / 'verify_bundle.py'}")


COMMANDS: tuple[click.Command, ...] = (checkpoint, prove, verify_proof, evidence)
