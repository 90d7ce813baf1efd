"""What the command-line modules share: the ledger of the invocation, settling what a command
recorded, and a progress bar."""

from __future__ import annotations

import sys
from typing import Any

import click


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
