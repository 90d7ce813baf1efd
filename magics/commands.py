"""The magics: ``%nbgov <command>``, ``%%nbgov train``, ``%%nbgov_sql``.

One line magic routes to one small function per command (an unknown command is answered with the
list of valid ones); each parses its arguments, makes one call into the core and returns the
result for IPython to display. ``@no_var_expand`` everywhere: the SQL or text recorded is exactly
what the user wrote; values reach SQL only as bound ``$name`` parameters.
"""

from __future__ import annotations

import argparse
import ast
import json
import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_cell_magic, magics_class, no_var_expand

if TYPE_CHECKING:
    from nbgov.magics.session import NotebookSession

__all__ = ["NbgovMagics"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports misuse as IPython's short UsageError instead of exiting."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> Any:  # type: ignore[override]
        raise UsageError(message or self.format_usage())


def _parser(prog: str, description: str) -> _Parser:
    return _Parser(prog=prog, description=description, add_help=False)


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"cannot parse arguments: {exc}") from None


def _parse_params(items: list[str], namespace: dict[str, Any]) -> dict[str, Any]:
    """``name=value`` (JSON if it parses, else text) or ``name`` (that notebook variable)."""
    params: dict[str, Any] = {}
    for item in items:
        name, equals, raw = item.partition("=")
        if not name.isidentifier():
            raise UsageError(f"--param {item!r}: expected NAME=VALUE or NAME")
        if equals:
            try:
                value = json.loads(raw)
            except ValueError:
                value = raw
            params[name] = raw if isinstance(value, (dict, list)) else value
        elif name in namespace:
            params[name] = namespace[name]
        else:
            raise UsageError(f"--param {name}: no notebook variable {name!r} (or give {name}=VALUE)")
    return params


_SQL = _parser("%nbgov sql", "Read-only SQL over the ledger.")
_SQL.add_argument("-o", "--output", metavar="NAME", help="also store the DataFrame in NAME")
_SQL.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE")
_SQL.add_argument("query", nargs="*")

_DATASET = _parser("%nbgov dataset", "Declare provenance facts about a dataset.")
_DATASET.add_argument("path")
_DATASET.add_argument("--source")
_DATASET.add_argument("--license")
_DATASET.add_argument("--owner")
_DATASET.add_argument("--contains-pii", metavar="COL,COL")
_DATASET.add_argument("--description")

_TRAIN = _parser("%%nbgov train", "Run the cell, naming the models it fits.")
_TRAIN.add_argument("--model", required=True, metavar="NAME")


@magics_class
class NbgovMagics(Magics):
    """nbgov's magics; see ``%nbgov help``."""

    def __init__(self, shell: Any, session: NotebookSession) -> None:
        super().__init__(shell)
        self.session = session
        self.commands: dict[str, Callable[[str], Any]] = {
            "sql": self._sql,
            "dataset": self._dataset,
            "status": self._status,
            "flush": self._flush,
            "help": self._help,
        }

    @no_var_expand
    @line_cell_magic
    def nbgov(self, line: str, cell: str | None = None) -> Any:
        """nbgov governance commands.

        Line magic::

            %nbgov sql [-o NAME] [-p NAME=VALUE ...] SELECT ...   read-only SQL over the ledger
            %nbgov dataset PATH [--source S] [--license L] [--owner O] [--contains-pii a,b]
            %nbgov status                                        what this session recorded
            %nbgov flush                                         ingest pending events now
            %nbgov help

        Cell magic::

            %%nbgov train --model credit_risk
            model = LogisticRegression().fit(X_train, y_train)

        Example::

            %nbgov dataset data/hmda.csv --source "FFIEC HMDA 1990" --license public --owner risk-team
        """
        command, _, rest = line.strip().partition(" ")
        if cell is not None:
            if command != "train":
                raise UsageError("%%nbgov: the cell form runs 'train --model NAME'; for SQL use %%nbgov_sql")
            return self._train(rest, cell)
        handler = self.commands.get(command)
        if handler is None:
            valid = ", ".join(self.commands)
            raise UsageError(f"%nbgov: unknown command {command!r}; valid commands: {valid}")
        return handler(rest)

    @no_var_expand
    @cell_magic
    def nbgov_sql(self, line: str, cell: str) -> Any:
        """Run read-only SQL over the ledger (after ingesting, so you see your own writes).

        Options: ``-o NAME`` stores the DataFrame in NAME; ``-p NAME=VALUE`` or ``-p NAME`` (a
        notebook variable) binds ``$NAME``. Statements that would modify the ledger are refused.

        Example::

            %%nbgov_sql -o upstream -p model=credit_risk@1
            SELECT * FROM lineage_upstream('model:' || $model)
        """
        return self._sql(line, body=cell)

    # -- commands -------------------------------------------------------------------------------

    def _sql(self, line: str, body: str | None = None) -> Any:
        args = _SQL.parse_args(_split(line) if body is not None else _split_sql_line(line))
        query = body if body is not None else " ".join(args.query)
        if not query.strip():
            raise UsageError("%nbgov sql: give a query")
        params = _parse_params(args.param, self.shell.user_ns)
        recorder = self.session.recorder
        with recorder.internal():
            frame = recorder.ledger.query(query, params)
        if args.output:
            if not args.output.isidentifier():
                raise UsageError(f"-o {args.output!r}: not a valid variable name")
            self.shell.user_ns[args.output] = frame
        return frame

    def _dataset(self, line: str) -> Any:
        args = _DATASET.parse_args(_split(line))
        pii = [c.strip() for c in args.contains_pii.split(",") if c.strip()] if args.contains_pii else None
        node = self.session.recorder.declare_dataset(
            args.path, source=args.source, license=args.license, owner=args.owner,
            contains_pii=pii, description=args.description,
        )
        print(f"declared {args.path} ({node})")
        return None

    def _status(self, line: str) -> Any:
        if line.strip():
            raise UsageError("%nbgov status takes no arguments")
        recorder = self.session.recorder
        with recorder.internal():
            return recorder.ledger.query(
                "SELECT type, count(*) AS events FROM events WHERE (session->>'session_id') = $s "
                "GROUP BY type ORDER BY events DESC, type",
                {"s": recorder.session_id},
            )

    def _flush(self, line: str) -> Any:
        if line.strip():
            raise UsageError("%nbgov flush takes no arguments")
        recorder = self.session.recorder
        with recorder.internal():
            report = recorder.ledger.ingest()
        print(f"ingested {report.events} events")
        return None

    def _help(self, line: str) -> Any:
        print(self.nbgov.__doc__)
        return None

    def _train(self, line: str, cell: str) -> Any:
        args = _TRAIN.parse_args(_split(line))
        recorder = self.session.recorder
        code = self.shell.transform_cell(cell)
        tree = ast.parse(code)
        recorder.guard("cell analysis", recorder.analyze, tree)
        recorder.set_model_name(args.model)
        exec(compile(tree, "<nbgov train>", "exec"), self.shell.user_ns)  # noqa: S102
        return None


def _split_sql_line(line: str) -> list[str]:
    """Options first, then the query verbatim (quotes inside SQL must survive)."""
    words = line.split()
    options: list[str] = []
    while words and words[0].startswith("-"):
        option = words.pop(0)
        options.append(option)
        if option in ("-o", "--output", "-p", "--param") and words:
            options.append(words.pop(0))
    query = line.split(None, len(options))[len(options)] if len(line.split()) > len(options) else ""
    return [*options, "--", query] if query else options
