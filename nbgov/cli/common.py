"""What the command-line modules share: the ledger of the invocation, settling what a command
recorded, one ``--format`` option and renderer for every command that prints rows, and a
progress bar."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    import pyarrow as pa

F = TypeVar("F", bound=Callable[..., Any])

#: What ``--format`` means for every command that prints rows: ``table``, aligned text for people
#: (long values cut with an ellipsis, and the cut said); ``csv``, RFC 4180 with a header row;
#: ``json``, an array of objects. Commands that print one document (status, a check, the policy)
#: take ``text`` or ``json``.
ROWS = ("table", "csv", "json")
DOCUMENT = ("text", "json")


def output_format(*choices: str) -> Callable[[F], F]:
    """The ``--format`` option, the same on every command (``--json`` is a shorthand for
    ``--format json``). The command receives ``fmt``."""
    allowed = choices or ROWS

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def run(*args: Any, fmt: str, as_json: bool = False, **kwargs: Any) -> Any:
            return function(*args, fmt="json" if as_json else fmt, **kwargs)

        run = click.option("--format", "fmt", type=click.Choice(allowed), default=allowed[0],
                           show_default=True, help="Output format: " + ", ".join(allowed) + ".")(run)
        if "json" in allowed:
            run = click.option("--json", "as_json", is_flag=True, help="Same as --format json.")(run)
        return run  # type: ignore[return-value]

    return decorate


def echo_rows(table: pa.Table, fmt: str, *, max_rows: int = 1000, empty: str | None = None) -> None:
    """Print *table* in the chosen ``--format``."""
    from nbgov.cli.formatting import render_csv, render_json, render_table

    if fmt == "csv":
        click.echo(render_csv(table))
    elif fmt == "json":
        click.echo(render_json(table))
    elif empty is not None and table.num_rows == 0:
        click.echo(empty)
    else:
        click.echo(render_table(table, max_rows=max_rows))


def ledger_of(ctx: click.Context) -> Any:
    """The ledger named by ``--home`` (or the settings) for this invocation."""
    from nbgov.ledger.facade import Ledger
    from nbgov.settings import resolve_settings

    return Ledger(settings=resolve_settings({"home": ctx.find_root().obj["home"]}))


def settle(ledger: Any) -> None:
    """Move what a command recorded into the ledger before it returns (not left in the spool)."""
    ledger.ingest()


class ProgressBar:
    """A progress bar on stderr for long work, shown only when stderr is a terminal."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._bar: Any = None
        self._shown = 0

    def __call__(self, done: int, total: int) -> None:
        if not sys.stderr.isatty() or total <= 0:
            return
        if self._bar is None:
            self._bar = click.progressbar(length=total, label=self.label, file=sys.stderr)
            self._bar.__enter__()
        self._bar.update(max(done - self._shown, 0))
        self._shown = done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
