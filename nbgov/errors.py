"""Every error nbgov raises, in one tree.

::

    NbgovError
    ├── ConfigError             a setting or a pyproject.toml value is invalid
    ├── FileProblem             a configuration file cannot be used (SOURCE: KEY: PROBLEM)
    │   ├── PolicyError         ... the policy file
    │   └── AlertConfigError    ... the alert sinks' file
    ├── EventError
    │   ├── UnknownEventType    the event type is not one nbgov defines
    │   └── InvalidPayload      the payload cannot be recorded (not JSON, NaN, huge int, ...)
    ├── SpoolError              the spool could not be written
    ├── LedgerError
    │   ├── NotALedger          the directory or file is not an nbgov ledger
    │   ├── LedgerCorrupt       the DuckDB file cannot be read as a database
    │   ├── LedgerAccessError   the operating system refused access (read-only, permissions)
    │   ├── LedgerLocked        another process holds the DuckDB file longer than the retry budget
    │   ├── LedgerUnavailable   a team ledger's catalog (PostgreSQL) cannot be reached
    │   ├── SchemaTooNew        the ledger was written by a newer nbgov
    │   ├── IngestError         an ingest transaction did not commit as DuckDB reported
    │   └── QueryError          a SQL query failed
    │       └── WriteRefused    the statement would modify the ledger
    ├── TeamBackendMissing      the team backend's DuckDB extensions are not installed
    ├── IntegrityError          proofs, signed notes, checkpoints and signing keys
    │   ├── ProofError          a Merkle proof does not verify (or is malformed)
    │   ├── ProofFileError      a proof file is unreadable or malformed
    │   ├── NoteError           a signed note is malformed or not signed by a trusted key
    │   ├── NotAnExtension      the ledger does not extend a checkpoint append-only
    │   └── SigningKeyError     a signing key cannot be read, created or used
    ├── GovernanceError         a governance action cannot be carried out
    │   ├── UnknownModel        no such model version
    │   ├── PermissionDenied    missing role, or segregation of duties
    │   ├── ApprovalRefused     an approval or rejection was denied (and the denial recorded)
    │   ├── PolicyBreach        a review found the policy breached
    │   │   └── CheckFailed     a model version failed its policy check
    │   ├── EvaluationError     a bias or drift test's inputs are not usable
    │   ├── AccessError         a dataset classification or access grant is not valid
    │   ├── VendorError         a vendor cannot be registered or linked as asked
    │   ├── RiskError           a risk register entry is not valid
    │   └── DescriptionError    a model description cannot be recorded as given
    ├── ReviewError             a review cannot be launched as asked
    │   ├── ScheduleError       a schedule cannot be added, changed or removed as asked
    │   └── CronError           an invalid cron expression or time zone
    ├── AlertError
    │   └── DeliveryError       one delivery of an alert to one sink failed
    └── EvidenceError           evidence cannot be gathered or presented as asked
        ├── ParquetLayoutError  a table cannot be written in the evidence layout
        └── ExportError         an export cannot be made as asked

Each error carries a one-line ``message`` and a ``hint`` saying what to do next; notebooks show
both without a traceback through nbgov internals (``_render_traceback_``). Every class here is
exported from :mod:`nbgov` itself (``except nbgov.PolicyError``).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AccessError",
    "AlertConfigError",
    "AlertError",
    "ApprovalRefused",
    "CheckFailed",
    "ConfigError",
    "CronError",
    "DeliveryError",
    "DescriptionError",
    "EvaluationError",
    "EventError",
    "EvidenceError",
    "ExportError",
    "FileProblem",
    "GovernanceError",
    "IngestError",
    "IntegrityError",
    "InvalidPayload",
    "LedgerAccessError",
    "LedgerCorrupt",
    "LedgerError",
    "LedgerLocked",
    "LedgerUnavailable",
    "NbgovError",
    "NbgovWarning",
    "NotALedger",
    "NotAnExtension",
    "NoteError",
    "ParquetLayoutError",
    "PermissionDenied",
    "PolicyBreach",
    "PolicyError",
    "ProofError",
    "ProofFileError",
    "QueryError",
    "ReviewError",
    "RiskError",
    "ScheduleError",
    "SchemaTooNew",
    "SigningKeyError",
    "SpoolError",
    "TeamBackendMissing",
    "UnknownEventType",
    "UnknownModel",
    "VendorError",
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


class PolicyError(FileProblem):
    """A policy cannot be used: missing, not TOML, or not a valid policy (``SOURCE: KEY: PROBLEM``)."""

    default_hint = "see the policy reference in the README, or `nbgov policy init` for a nbgov-policy.toml"


class AlertConfigError(FileProblem):
    """The alert configuration cannot be used: missing, not TOML, or not valid
    (``SOURCE: KEY: PROBLEM``)."""

    default_hint = ("alert sinks are configured in the file NBGOV_ALERTS names or in "
                    "[tool.nbgov.alerts] of pyproject.toml")


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


class LedgerUnavailable(LedgerError):
    """The shared catalog (PostgreSQL, or the data path) cannot be reached right now."""

    default_hint = ("captured events wait in this host's spool; `nbgov ingest` moves them once "
                    "PostgreSQL is reachable again")


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


class TeamBackendMissing(NbgovError):
    """The team backend's DuckDB extensions are not installed."""

    default_hint = "pip install 'nbgov[team]' (DuckDB's ducklake and postgres extensions, offline wheels)"


# --- integrity: proofs, signed notes, checkpoints, keys --------------------------------------


class IntegrityError(NbgovError):
    """A proof, signed note, checkpoint or signing key cannot be used."""


class ProofError(IntegrityError):
    """A Merkle proof does not verify (or is malformed)."""


class ProofFileError(IntegrityError):
    """A proof file is unreadable or malformed."""


class NoteError(IntegrityError):
    """A signed note or checkpoint is malformed, or not signed by a trusted key."""


class NotAnExtension(IntegrityError):
    """The ledger is not an append-only extension of a checkpoint; ``seq`` is where it shows."""

    def __init__(self, message: str, *, seq: int) -> None:
        super().__init__(message)
        self.seq = seq


class SigningKeyError(IntegrityError):
    """A signing key cannot be read, created or used."""


# --- governance --------------------------------------------------------------------------------


class GovernanceError(NbgovError):
    """A governance action cannot be carried out."""


class UnknownModel(GovernanceError):
    """No such model version in the ledger."""

    default_hint = "list them with: nbgov sql \"SELECT model, version, state FROM model_versions\""


class PermissionDenied(GovernanceError):
    """The acting user may not do this (missing role, or segregation of duties)."""


class ApprovalRefused(GovernanceError):
    """An approval attempt was denied; the denial is recorded in the ledger.

    Attributes
    ----------
    reasons : list[str]
        Reason codes (self_approval, missing_role, policy_check_failed, retired, rejected,
        already_approved_by_reviewer; for a refused rejection also approved).
    event_id : str
        The ``approval_denied`` event.
    check : CheckReport or None
        The policy check run for an approval attempt (None for a refused rejection).
    """

    def __init__(self, message: str, *, reasons: list[str], event_id: str, check: Any,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reasons = reasons
        self.event_id = event_id
        self.check = check


class PolicyBreach(GovernanceError):
    """A review found the policy breached (review notebooks raise it, so their run fails and the
    alert says "policy breach")."""


class CheckFailed(PolicyBreach):
    """A model version failed its policy check (raised in notebooks, so review runs fail).

    Attributes
    ----------
    report : CheckReport
        The check (``report.findings``, ``report.failures``).
    """

    def __init__(self, report: Any) -> None:
        failed = report.failures
        super().__init__(
            f"{report.ref} fails the policy check: {len(failed)} finding(s): "
            + "; ".join(f.message for f in failed[:3]) + (" ..." if len(failed) > 3 else ""),
            hint=failed[0].remedy if failed and failed[0].remedy else "see the findings above",
        )
        self.report = report


class EvaluationError(GovernanceError):
    """The inputs of a bias or drift test are not usable (says which and why)."""


class AccessError(GovernanceError):
    """A classification or grant is not valid."""


class VendorError(GovernanceError):
    """A vendor cannot be registered or linked as asked."""


class RiskError(GovernanceError):
    """A risk register entry is not valid."""


class DescriptionError(GovernanceError):
    """A model description cannot be recorded as given."""


# --- reviews and alerts ------------------------------------------------------------------------


class ReviewError(NbgovError):
    """A review cannot be launched as asked (notebook, parameters); nothing is recorded."""


class ScheduleError(ReviewError):
    """A schedule cannot be added, changed or removed as asked; nothing is recorded."""


class CronError(ReviewError):
    """An invalid cron expression or time zone (one-line message naming the problem)."""


class AlertError(NbgovError):
    """An alert cannot be raised or delivered."""


class DeliveryError(AlertError):
    """One attempt to deliver an alert to one sink failed.

    Attributes
    ----------
    sink : str
        The sink, as ``<type> sink '<name>'`` (or ``<type> sink`` when it has no name).
    problem : str
        What failed: the HTTP status, the timeout, the exit status, the operating system's error.
    """

    default_hint = "the alert was not delivered; check the sink's target and try again"

    def __init__(self, sink: str, problem: str) -> None:
        super().__init__(f"{sink}: {problem}")
        self.sink = sink
        self.problem = problem


# --- evidence and exports ----------------------------------------------------------------------


class EvidenceError(NbgovError):
    """Evidence cannot be gathered or presented as asked."""


class ParquetLayoutError(EvidenceError):
    """A table cannot be written in the evidence layout (or the file written is not in it)."""

    default_hint = "report this as a bug: evidence tables must stay readable by the bundle verifier"


class ExportError(EvidenceError):
    """An export cannot be made as asked (a bad period, an unwritable destination)."""
