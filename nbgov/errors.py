"""Every error nbgov raises, in one tree.

::

    NbgovError
    ├── ConfigError            a setting or pyproject.toml value is invalid
    ├── FileProblem            a configuration file (policy, alert sinks) cannot be used
    ├── EventError
    │   ├── UnknownEventType   the event type is not one nbgov defines
    │   └── InvalidPayload     the payload cannot be recorded (not JSON, NaN, huge int, ...)
    ├── SpoolError             the spool could not be written
    └── LedgerError
        ├── NotALedger         the directory or file is not an nbgov ledger
        ├── LedgerCorrupt      the DuckDB file cannot be read as a database
        ├── LedgerAccessError  the operating system refused access (read-only, permissions)
        ├── LedgerLocked       another process holds the DuckDB file longer than the retry budget
        ├── SchemaTooNew       the ledger was written by a newer nbgov
        ├── IngestError        an ingest transaction did not commit as DuckDB reported
        └── QueryError         a SQL query failed
            └── WriteRefused   the statement would modify the ledger

Each error carries a one-line ``message`` and a ``hint`` saying what to do next; notebooks show
both without a traceback through nbgov internals (``_render_traceback_``).
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "FileProblem",
    "EventError",
    "IngestError",
    "InvalidPayload",
    "LedgerAccessError",
    "LedgerCorrupt",
    "LedgerError",
    "LedgerLocked",
    "NbgovError",
    "NbgovWarning",
    "NotALedger",
    "QueryError",
    "SchemaTooNew",
    "SpoolError",
    "UnknownEventType",
    "WriteRefused",
]


class NbgovWarning(UserWarning):
    """Warnings nbgov emits (a capture hook failed, a spool line was refused, ...)."""


class NbgovError(Exception):
    """Base of every nbgov error.

    Parameters
    ----------
    message
        What happened, in one line.
    hint
        What the user can do about it, in one line (optional).
    """

    default_hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = self.default_hint if hint is None else hint

    def __str__(self) -> str:
        return self.message

    def one_line(self) -> str:
        """The message and hint joined into the single line the CLI prints."""
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def _render_traceback_(self) -> list[str]:
        # IPython calls this instead of printing a traceback through nbgov's internals.
        lines = [f"{type(self).__name__}: {self.message}"]
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return lines


class FileProblem(NbgovError):
    """A configuration file (or ``pyproject.toml`` table) cannot be used: missing, not TOML, or
    not valid. The message reads ``SOURCE: KEY: PROBLEM``.

    Attributes
    ----------
    source : str
        The file (or ``pyproject.toml [tool.nbgov.X]``) the configuration came from.
    key : str
        The dotted key at fault (empty when the whole file is at fault).
    problem : str
        What is wrong with it.
    """

    def __init__(self, source: str, key: str, problem: str, *, hint: str | None = None) -> None:
        where = f"{source}: {key}: " if key else f"{source}: "
        super().__init__(where + problem, hint=hint)
        self.source = source
        self.key = key
        self.problem = problem


class ConfigError(NbgovError):
    """A setting is invalid.

    Attributes
    ----------
    source : str
        Where the bad value came from (a file path, an environment variable, an argument).
    key : str
        The setting's name.
    """

    def __init__(self, message: str, *, source: str, key: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.source = source
        self.key = key


class EventError(NbgovError):
    """An event cannot be recorded."""


class UnknownEventType(EventError):
    """The event type is not one nbgov defines."""

    def __init__(self, type_name: str, known: list[str]) -> None:
        super().__init__(
            f"unknown event type {type_name!r}",
            hint="known types: " + ", ".join(sorted(known)),
        )
        self.type_name = type_name


class InvalidPayload(EventError):
    """A payload value cannot be encoded as canonical JSON.

    Attributes
    ----------
    path : str
        Where in the payload the bad value sits, e.g. ``payload['metrics'][2]``.
    """

    def __init__(self, path: str, problem: str, *, hint: str | None = None) -> None:
        super().__init__(f"{path}: {problem}", hint=hint)
        self.path = path
        self.problem = problem


class SpoolError(NbgovError):
    """Appending to the spool failed; the event was not recorded."""


class LedgerError(NbgovError):
    """A problem with the ledger itself."""


class NotALedger(LedgerError):
    """The directory or file is not an nbgov ledger."""

    default_hint = "run `nbgov init` there, or point NBGOV_HOME / --home at an existing ledger"


class LedgerCorrupt(LedgerError):
    """The DuckDB file cannot be read as a database."""

    default_hint = "restore the ledger file from a backup; the spool still holds un-ingested events"


class LedgerAccessError(LedgerError):
    """The operating system refused to read or write the ledger's files."""

    default_hint = "check the directory's permissions, or choose another with --home / NBGOV_HOME"


class LedgerLocked(LedgerError):
    """Another process held the DuckDB file for longer than the retry budget.

    Attributes
    ----------
    holder : str
        The holding process as DuckDB or the ingest lock reported it (may be empty).
    waited : float
        Seconds spent retrying.
    """

    def __init__(self, path: str, holder: str, waited: float) -> None:
        who = f" by {holder}" if holder else ""
        super().__init__(
            f"ledger {path} is locked{who} (waited {waited:.1f}s)",
            hint="wait for that process to finish, or raise NBGOV_LOCK_TIMEOUT",
        )
        self.holder = holder
        self.waited = waited


class SchemaTooNew(LedgerError):
    """The ledger's schema is newer than this nbgov understands."""

    default_hint = "upgrade nbgov (pip install -U nbgov) before opening this ledger"


class IngestError(LedgerError):
    """An ingest transaction did not end as DuckDB reported; nothing was lost."""

    default_hint = "run `nbgov ingest` again: the spool still holds every event"


class QueryError(LedgerError):
    """A SQL query over the ledger failed."""

    default_hint = "check the statement; `nbgov sql 'SHOW TABLES'` lists what can be queried"


class WriteRefused(QueryError):
    """The statement would modify the ledger, which is append-only."""

    default_hint = (
        "the ledger is read-only to SQL; record facts through nbgov, and correct them with a "
        "correction event"
    )
