"""The ``nbgov`` command line: a thin layer over :class:`nbgov.Ledger`.

Each command parses its options, makes one call into the core and renders the result. Errors
are one line on stderr (``nbgov: error: ...``) and exit status 1; usage errors exit 2.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from nbgov._version import __version__
from nbgov.cli.common import DOCUMENT, echo_rows, output_format
from nbgov.cli.common import ProgressBar as _ProgressBar
from nbgov.cli.common import ledger_of as _ledger
from nbgov.errors import NbgovError

F = TypeVar("F", bound=Callable[..., Any])


def _parse_param(text: str) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    if not sep or not name.isidentifier():
        raise click.BadParameter(f"{text!r} is not NAME=VALUE", param_hint="--param")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    if isinstance(value, (dict, list)):
        value = raw
    return name, value


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--home",
    type=click.Path(path_type=Path),
    default=None,
    help="Ledger directory (default: NBGOV_HOME, [tool.nbgov] home, or ./.nbgov).",
)
@click.version_option(__version__, prog_name="nbgov")
@click.pass_context
def cli(ctx: click.Context, home: Path | None) -> None:
    """nbgov: governance evidence for notebook-based machine learning.

    Everything recorded lands in an append-only, hash-chained DuckDB ledger that any SQL client
    can read.

    \b
    Example:
      nbgov init
      nbgov sql "SELECT type, count(*) FROM events GROUP BY type"
      nbgov verify
    """
    ctx.ensure_object(dict)
    ctx.obj["home"] = home


@cli.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create a ledger (directory 0700, database 0600), or upgrade an existing one.

    \b
    Example:
      nbgov --home ./.nbgov init
    """
    from nbgov.ledger.facade import Ledger

    ledger = Ledger.init(ctx.obj["home"])
    status = ledger.status()
    click.echo(f"ledger {status.ledger_id} at {status.home} ({status.events} events)")


@cli.command()
@click.argument("query", required=False)
@click.option("-f", "--file", "sql_file", type=click.File("r"),
              help="Read the SQL from a file ('-' for stdin).")
@output_format()
@click.option("-p", "--param", "params", multiple=True, metavar="NAME=VALUE",
              help="Bind $NAME in the query (VALUE parsed as JSON if it can be, else text).")
@click.option("--max-rows", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Rows shown in table format.")
@click.pass_context
def sql(ctx: click.Context, query: str | None, sql_file: Any, fmt: str, params: tuple[str, ...],
        max_rows: int) -> None:
    """Run read-only SQL over the ledger (after ingesting pending events).

    Statements that would modify the ledger are refused.

    \b
    Example:
      nbgov sql "SELECT type, count(*) AS n FROM events GROUP BY type ORDER BY n DESC"
      nbgov sql --format csv -p t=cell_executed "SELECT * FROM events WHERE type = \\$t"
    """
    if (query is None) == (sql_file is None):
        raise click.UsageError("give the SQL as an argument or with --file, not both")
    text = query if query is not None else sql_file.read()
    bound = dict(_parse_param(p) for p in params)
    echo_rows(_ledger(ctx).query_arrow(text, bound).table, fmt, max_rows=max_rows)


@cli.command()
@click.option("--against", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A signed checkpoint from `nbgov checkpoint export`, kept outside the ledger.")
@click.option("--key", "keys", multiple=True, metavar="VKEY",
              help="A verifier key (NAME+ID+KEY, or a file of them) trusted to have signed the "
                   "--against checkpoint (default: the keys registered in the ledger). Repeatable.")
@click.pass_context
def verify(ctx: click.Context, against: Path | None, keys: tuple[str, ...]) -> None:
    """Recompute every leaf hash, the chain, the Merkle tree and every recorded checkpoint, and
    check every approval's signature against the reviewer's registered key; exit 0 only if all
    hold. With --against, also prove the ledger is an append-only extension of a checkpoint
    exported earlier.

    \b
    Example:
      nbgov checkpoint export cp.note        # keep this file somewhere else
      nbgov checkpoint keys > keys.txt       # and the key that signed it
      nbgov verify --against cp.note --key keys.txt
    """
    from nbgov.governance.approvals import verify_approvals
    from nbgov.ledger.integrity.checkpoints import read_note_file
    from nbgov.ledger.integrity.proofs import read_keys
    from nbgov.ledger.integrity.verify import Head, read_head_file

    trusted = read_keys(keys)
    target: Head | str | None = None
    if against is not None:
        text = read_note_file(against)
        target = read_head_file(against) if text.lstrip().startswith("{") else text
    bar = _ProgressBar("verifying")
    ledger = _ledger(ctx)
    try:
        report = ledger.verify(against=target, trusted=trusted, progress=bar)
    finally:
        bar.close()
    if report.ok:
        signatures = verify_approvals(ledger)
        bad = [s for s in signatures if not s.valid]
        extra = ""
        if isinstance(target, Head):
            extra = f", head at seq {target.seq} holds"
        elif report.against is not None:
            extra = (f", extends the checkpoint of {report.against.checkpoint.size} events "
                     f"signed by {report.against.signer.name}+{report.against.signer.key_id.hex()}")
        click.echo(f"ok: {report.events} events verified, head seq {report.head_seq} "
                   f"chain {report.head_chain[:16]}, {report.checkpoints} checkpoint(s){extra}")
        if signatures:
            click.echo(f"{len(signatures) - len(bad)} of {len(signatures)} approval signature(s) valid")
        for item in bad:
            click.echo(f"FAILED: approval seq {item.seq} of {item.model}@{item.version} by "
                       f"{item.reviewer}: {item.problem}", err=True)
        if bad:
            ctx.exit(1)
        return
    first = report.first_problem
    assert first is not None
    click.echo(f"FAILED: {report.problem_count} problem(s); first bad seq {first.seq}: "
               f"{first.kind}: {first.detail}", err=True)
    for problem in sorted(report.problems, key=lambda p: p.seq)[1:10]:
        click.echo(f"  {problem.describe()}", err=True)
    ctx.exit(1)


@cli.command()
@output_format(*DOCUMENT)
@click.pass_context
def status(ctx: click.Context, fmt: str) -> None:
    """Show counts, the head, the last ingest and what is waiting in the spool.

    \b
    Example:
      nbgov status --json
    """
    import dataclasses

    st = _ledger(ctx).status()
    if fmt == "json":
        data = dataclasses.asdict(st)
        data["pending_lines"] = st.pending_lines
        click.echo(json.dumps(data, indent=1, default=str))
        return
    click.echo(f"ledger      {st.ledger_id or '(not created yet)'}  schema v{st.schema_version}")
    click.echo(f"database    {st.database}")
    click.echo(f"events      {st.events}  (head seq {st.head_seq}, chain {st.head_chain[:16]})")
    for kind, count in st.by_type.items():
        click.echo(f"  {kind:<24}{count}")
    click.echo(f"last ingest {st.last_ingest or 'never'}"
               + (f" ({st.last_ingest_events} events)" if st.last_ingest else ""))
    click.echo(f"sessions    {st.sessions_open} open (started, not ended)")
    for lost in st.sessions_lost:
        click.echo(f"  ended: lost  {lost.session_id}  {lost.notebook or '(no notebook)'}  "
                   f"last event {lost.last_event_type} at {lost.last_event_at}")
    live = sum(s.writer_alive for s in st.segments)
    click.echo(f"spool       {len(st.segments)} active segment(s) ({live} with a live writer), "
               f"{st.pending_lines} line(s) pending")
    for rejection in st.blocked:
        click.echo(f"  blocked: {rejection.describe()}")


@cli.command()
@click.pass_context
def ingest(ctx: click.Context) -> None:
    """Move pending spool lines into the ledger now (queries do this on their own).

    Exits 1 if a spool line was refused for the first time (edited or corrupt).

    \b
    Example:
      nbgov ingest
    """
    bar = _ProgressBar("ingesting")
    try:
        report = _ledger(ctx).ingest(progress=bar)
    finally:
        bar.close()
    if report.events:
        click.echo(f"ingested {report.events} events in {report.batches} batch(es), "
                   f"seq {report.first_seq}..{report.last_seq}")
    else:
        click.echo("nothing to ingest")
    new = {(r.segment, r.line) for r in report.rejected}
    for rejection in report.blocked:
        label = "error" if (rejection.segment, rejection.line) in new else "warning: still blocked"
        click.echo(f"nbgov: {label}: {rejection.describe()}", err=True)
    if report.rejected:
        ctx.exit(1)


@cli.command()
@click.option("--to", "url", required=True, metavar="URL",
              help="The team ledger: ducklake:postgres:<libpq connection>;data=<shared path>.")
@click.pass_context
def migrate(ctx: click.Context, url: str) -> None:
    """Copy this host's embedded ledger (in --home) into a new, empty team ledger, keeping every
    event's hashes, the Merkle tree and the ledger's id, so it verifies there (and so do its
    exported checkpoints); then record ledger_migrated there.

    \b
    Example:
      nbgov migrate --to "ducklake:postgres:dbname=nbgov host=db;data=/shared/nbgov/"
      export NBGOV_LEDGER="ducklake:postgres:dbname=nbgov host=db;data=/shared/nbgov/"
      nbgov verify
    """
    from nbgov.ledger.facade import Ledger
    from nbgov.ledger.migrate import migrate_to_team
    from nbgov.settings import resolve_settings

    source = Ledger(settings=resolve_settings({"home": ctx.find_root().obj["home"], "ledger": ""}))
    if not source.settings.ledger_path.exists():
        raise NbgovError(f"no embedded ledger at {source.settings.ledger_path} to migrate")
    events, head = migrate_to_team(source, url)
    click.echo(f"copied {events} events (head chain {head[:16]}) into the team ledger; "
               "set NBGOV_LEDGER to it on every host")


@cli.command()
@click.option("--notebooks", type=click.Path(file_okay=False, path_type=Path),
              default=Path("example_notebooks"), show_default=True,
              help="Folder of notebooks to run.")
@click.pass_context
def demo(ctx: click.Context, notebooks: Path) -> None:
    """Run the example notebooks end to end with nbgov loaded, then show the ledger.

    Each notebook runs in a fresh kernel under papermill; the executed copies are kept under
    <home>/runs/. Exits 1 if a notebook failed or the ledger does not verify.

    \b
    Example:
      nbgov demo
      nbgov --home /tmp/nbgov-demo demo --notebooks example_notebooks
    """
    from nbgov.cli.demo import present_demo, run_demo

    result = run_demo(ctx.obj["home"], notebooks, announce=click.echo)
    if not present_demo(result, click.echo):
        ctx.exit(1)


from nbgov.cli.evidence import COMMANDS as _EVIDENCE  # noqa: E402
from nbgov.cli.export import COMMANDS as _EXPORT  # noqa: E402
from nbgov.cli.governance import COMMANDS as _GOVERNANCE  # noqa: E402
from nbgov.cli.models import COMMANDS as _MODELS  # noqa: E402
from nbgov.cli.registers import COMMANDS as _REGISTERS  # noqa: E402
from nbgov.cli.reviews import COMMANDS as _REVIEWS  # noqa: E402

for _command in (*_GOVERNANCE, *_REGISTERS, *_REVIEWS, *_MODELS, *_EVIDENCE, *_EXPORT):
    cli.add_command(_command)


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    click.echo(f"nbgov: warning: {message}", err=True)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI, turning nbgov errors into one line and exit 1."""
    import warnings

    warnings.showwarning = _show_warning
    try:
        code = cli.main(args=argv, prog_name="nbgov", standalone_mode=False)
    except NbgovError as exc:
        click.echo(f"nbgov: error: {exc.one_line()}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("nbgov: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
