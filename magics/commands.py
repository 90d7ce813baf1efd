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

_CHECK = _parser("%nbgov check", "Check a model version against the policy.")
_CHECK.add_argument("model", metavar="NAME[@VERSION]")
_CHECK.add_argument("--policy", metavar="FILE")

_APPROVE = _parser("%nbgov approve", "Approve a model version as the acting user.")
_APPROVE.add_argument("model", metavar="NAME[@VERSION]")
_APPROVE.add_argument("--policy", metavar="FILE")
_APPROVE.add_argument("--note")

_REJECT = _parser("%nbgov reject", "Reject a model version as the acting user, with a reason.")
_REJECT.add_argument("model", metavar="NAME[@VERSION]")
_REJECT.add_argument("--policy", metavar="FILE")
_REJECT.add_argument("--reason", required=True)

_REQUEST = _parser("%nbgov request", "Ask reviewers to approve a model version.")
_REQUEST.add_argument("model", metavar="NAME[@VERSION]")
_REQUEST.add_argument("--note")

_PANEL = _parser("%nbgov panel", "Show the governance panel.")
_PANEL.add_argument("model", nargs="?", metavar="NAME[@VERSION]")

_FAIRNESS = _parser("%nbgov fairness", "Bias test of predictions across groups.")
_FAIRNESS.add_argument("y_true", metavar="Y_TRUE")
_FAIRNESS.add_argument("y_pred", metavar="Y_PRED")
_FAIRNESS.add_argument("--sensitive", required=True, metavar="EXPR")
_FAIRNESS.add_argument("--model", metavar="NAME[@VERSION]")
_FAIRNESS.add_argument("--positive-label", metavar="VALUE")
_FAIRNESS.add_argument("--min-group-size", type=int)
_FAIRNESS.add_argument("-o", "--output", metavar="NAME")

_DRIFT = _parser("%nbgov drift", "Drift test of current data against a reference.")
_DRIFT.add_argument("reference", metavar="REFERENCE")
_DRIFT.add_argument("current", metavar="CURRENT")
_DRIFT.add_argument("--model", metavar="NAME[@VERSION]")
_DRIFT.add_argument("--features", metavar="COL,COL")
_DRIFT.add_argument("--categorical", metavar="COL,COL")
_DRIFT.add_argument("-o", "--output", metavar="NAME")

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
            "check": self._check,
            "approve": self._approve,
            "reject": self._reject,
            "request": self._request,
            "panel": self._panel,
            "fairness": self._fairness,
            "drift": self._drift,
            "policy": self._policy,
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
            %nbgov fairness Y_TRUE Y_PRED --sensitive EXPR [--model M] [--positive-label V] [-o NAME]
            %nbgov drift REFERENCE CURRENT [--model M] [--features a,b] [--categorical a,b] [-o NAME]
            %nbgov check NAME[@VERSION]                          policy check; raises if it fails
            %nbgov approve NAME[@VERSION] [--note TEXT]          approve as the acting user
            %nbgov reject NAME[@VERSION] --reason TEXT           reject as the acting user
            %nbgov request NAME[@VERSION] [--note TEXT]          ask reviewers for an approval
            %nbgov panel [NAME[@VERSION]]                        the governance panel (widgets)
            %nbgov policy                                        the policy in force
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

    def _eval(self, expression: str, what: str) -> Any:
        """A notebook variable or expression (e.g. ``X_test["race"]``) in the user's namespace."""
        try:
            return eval(expression, self.shell.user_ns)  # noqa: S307 - the user's own notebook
        except Exception as exc:
            raise UsageError(f"{what} {expression!r}: {type(exc).__name__}: {exc}") from None

    def _store(self, name: str | None, value: Any) -> None:
        if name:
            if not name.isidentifier():
                raise UsageError(f"-o {name!r}: not a valid variable name")
            self.shell.user_ns[name] = value

    def _check(self, line: str) -> Any:
        from IPython.display import display

        from nbgov import api
        from nbgov.errors import CheckFailed

        args = _CHECK.parse_args(_split(line))
        report = api.check(args.model, policy=args.policy)
        if not report.passed:
            display(report)
            raise CheckFailed(report)  # fail closed: a review run under papermill fails here
        return report

    def _approve(self, line: str) -> Any:
        from nbgov import api

        args = _APPROVE.parse_args(_split(line))
        print(api.approve(args.model, note=args.note, policy=args.policy))
        return None

    def _reject(self, line: str) -> Any:
        from nbgov import api

        args = _REJECT.parse_args(_split(line))
        print(api.reject(args.model, reason=args.reason, policy=args.policy))
        return None

    def _request(self, line: str) -> Any:
        from nbgov import api

        args = _REQUEST.parse_args(_split(line))
        api.request_approval(args.model, note=args.note)
        print(f"requested approval of {args.model}")
        return None

    def _panel(self, line: str) -> Any:
        from nbgov.widgets import GovernancePanel

        args = _PANEL.parse_args(_split(line))
        return GovernancePanel(model=args.model, shell=self.shell)

    def _fairness(self, line: str) -> Any:
        from nbgov.api import fairness

        args = _FAIRNESS.parse_args(_split(line))
        options: dict[str, Any] = {}
        if args.positive_label is not None:
            try:
                options["positive_label"] = json.loads(args.positive_label)
            except ValueError:
                options["positive_label"] = args.positive_label
        if args.min_group_size is not None:
            options["min_group_size"] = args.min_group_size
        result = fairness(
            self._eval(args.y_true, "Y_TRUE"), self._eval(args.y_pred, "Y_PRED"),
            self._eval(args.sensitive, "--sensitive"), model=args.model, **options)
        self._store(args.output, result)
        return result

    def _drift(self, line: str) -> Any:
        from nbgov.api import drift

        args = _DRIFT.parse_args(_split(line))

        def columns(text: str | None) -> list[str] | None:
            return [c.strip() for c in text.split(",") if c.strip()] if text else None

        result = drift(self._eval(args.reference, "REFERENCE"), self._eval(args.current, "CURRENT"),
                       model=args.model, features=columns(args.features),
                       categorical=columns(args.categorical))
        self._store(args.output, result)
        return result

    def _policy(self, line: str) -> Any:
        from nbgov.governance.policy import load_policy

        loaded = load_policy(line.strip() or None)
        print(f"{loaded.source}\nsha256 {loaded.sha256}")
        return loaded.policy.as_dict()

    def _help(self, line: str) -> Any:
        print(self.nbgov.__doc__)
        return None

    def _train(self, line: str, cell: str) -> Any:
        args = _TRAIN.parse_args(_split(line))
        recorder = self.session.recorder
        code = self.shell.transform_cell(cell)
        tree = ast.parse(code)
        recorder.guard("cell analysis", recorder.analyze, tree, "<nbgov train>")
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
