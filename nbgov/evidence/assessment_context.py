"""What every control's assessment works with: the status words it returns, the evidence it cites,
the caller's verification of the ledger, and the :class:`Context` through which it reads a
period's evidence tables (rows by table, the policy in force at the period's end, the policy check
of each version, the versions approved in and during the period).

:mod:`nbgov.evidence.assessments` holds the assessment of each control; :mod:`nbgov.evidence.controls`
the controls themselves and the report of how each stands.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nbgov.errors import EvidenceError, NbgovError
from nbgov.evidence.tables import EvidenceTable
from nbgov.governance.policy import LoadedPolicy, Policy, validate_policy

if TYPE_CHECKING:
    from nbgov.governance.checks import CheckReport
    from nbgov.ledger.facade import Ledger
    from nbgov.ledger.integrity.verify import VerifyReport

__all__ = ["EVIDENCED", "MISSING", "NOT_APPLICABLE", "PARTIAL", "Context", "Evidence", "Result",
           "VerificationSummary", "day_of", "n_of", "names_of", "ref_of", "seqs_of", "status_of"]

EVIDENCED, PARTIAL, MISSING, NOT_APPLICABLE = "evidenced", "partial", "missing", "not applicable"


@dataclass(frozen=True)
class Evidence:
    """Something found that shows a control working: a sentence, the table, example rows' ``seq``."""

    text: str
    table: str | None = None
    seqs: tuple[int, ...] = ()


@dataclass(frozen=True)
class VerificationSummary:
    """What the caller found when it verified the ledger (and the signed checkpoint it cut)."""

    ledger_id: str
    ok: bool
    events: int
    head_seq: int
    first_problem: str | None = None
    checkpoint_size: int | None = None
    checkpoint_origin: str | None = None
    checkpoint_root: str | None = None

    @classmethod
    def from_report(cls, report: VerifyReport, ledger_id: str, *, checkpoint_size: int | None = None,
                    checkpoint_origin: str | None = None, checkpoint_root: str | None = None
                    ) -> VerificationSummary:
        """The summary of a :class:`~nbgov.ledger.integrity.verify.VerifyReport` (and the checkpoint,
        if any)."""
        first = report.first_problem
        return cls(ledger_id, report.ok, report.events, report.head_seq,
                   None if first is None else first.describe(), checkpoint_size, checkpoint_origin,
                   checkpoint_root)


# -- helpers ----------------------------------------------------------------------------------------

#: What an assessment returns: its status, the evidence found and the gaps.
Result = tuple[str, list[Evidence], list[str]]


def status_of(good: int, needed: int) -> str:
    """``evidenced`` when all *needed* were good, ``missing`` when none, else ``partial`` (``not
    applicable`` when nothing was needed)."""
    if needed == 0:
        return NOT_APPLICABLE
    return EVIDENCED if good == needed else MISSING if good == 0 else PARTIAL


def n_of(count: int, word: str, plural: str | None = None) -> str:
    """*count* and the *word* counted: ``1 event``, ``3 events``."""
    return f"{count} {word if count == 1 else plural or word + 's'}"


def day_of(moment: Any) -> str:
    """The UTC day of a recorded moment (anything else as text)."""
    return moment.astimezone(dt.UTC).date().isoformat() if isinstance(moment, dt.datetime) else str(moment)


def seqs_of(rows: Iterable[dict[str, Any]], limit: int = 5) -> tuple[int, ...]:
    """The distinct ``seq`` of the first *limit* rows: example rows an auditor can look up."""
    found: list[int] = []
    for row in rows:
        if row.get("seq") is not None and row["seq"] not in found:
            found.append(int(row["seq"]))
    return tuple(found[:limit])


def ref_of(row: dict[str, Any]) -> str:
    """The row's model version, ``model@version``."""
    return f"{row['model']}@{row['version']}"


def names_of(values: Iterable[Any]) -> str:
    """The distinct values, in first-seen order, joined by commas."""
    return ", ".join(dict.fromkeys(str(v) for v in values))


class Context:
    """A period's evidence as the assessments read it, with what they share worked out once."""

    def __init__(self, ledger: Ledger, start: dt.date, end: dt.date, tables: Sequence[EvidenceTable],
                 verification: VerificationSummary, policy: LoadedPolicy | None,
                 now: dt.datetime | None) -> None:
        self.ledger, self.start, self.end, self.verification = ledger, start, end, verification
        self.tables = {table.name: table for table in tables}
        self.now = now or dt.datetime.now(dt.UTC)
        self._rows: dict[str, list[dict[str, Any]]] = {}
        self._checks: dict[str, CheckReport] = {}
        self.policy = policy or self._policy_at_end()

    def rows(self, name: str) -> list[dict[str, Any]]:
        if name not in self._rows:
            self._rows[name] = self.tables[name].records() if name in self.tables else []
        return self._rows[name]

    def _policy_at_end(self) -> LoadedPolicy:
        recorded = self.rows("policies")
        if not recorded:
            return LoadedPolicy(Policy(), "nbgov's defaults (no policy recorded by the period's end)", "")
        last = recorded[-1]
        try:
            rules = validate_policy(json.loads(last["policy"]), str(last["source"]))
        except NbgovError as exc:
            raise EvidenceError(f"the policy recorded at seq {last['seq']} cannot be read: "
                                f"{exc.message}") from None
        return LoadedPolicy(rules, str(last["source"]), str(last["sha256"]))

    def check(self, ref: str) -> CheckReport:
        """The policy check of a version, judged on the period's last day (not recorded)."""
        from nbgov.governance.checks import check_model

        if ref not in self._checks:
            self._checks[ref] = check_model(self.ledger, ref, self.policy, today=self.end, record=False)
        return self._checks[ref]

    def approved_in_period(self) -> list[dict[str, Any]]:
        return [r for r in self.rows("lifecycle_changes") if r["to_state"] == "approved"]

    def approved_during(self) -> list[str]:
        """Versions in the approved state at some time in the period."""
        refs = [r["ref"] for r in self.rows("model_inventory") if r["state"] == "approved"]
        refs += [ref_of(r) for r in self.rows("lifecycle_changes")
                 if "approved" in (r["from_state"], r["to_state"])]
        return sorted(set(refs))
