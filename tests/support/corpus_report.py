"""pytest plugin (loaded by conftest): the capture corpus's totals at the end of the run.

Each case of tests/test_corpus.py records its counts as the ``corpus_counts`` user property; the
reports reach this hook in the controlling process under pytest-xdist too, so the totals cover
every case that ran, whichever worker ran it.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

_COLLECTED: dict[str, dict[str, Any]] = {}


def pytest_runtest_logreport(report: Any) -> None:
    if report.when != "call":
        return
    for name, value in getattr(report, "user_properties", ()):
        if name == "corpus_counts":
            counts = json.loads(value)
            _COLLECTED[counts["case"]] = counts


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _COLLECTED:
        terminalreporter.write_sep("=", "capture corpus totals")
        terminalreporter.write_line(format_totals(list(_COLLECTED.values())))


def format_totals(collected: list[dict[str, Any]]) -> str:
    """One line per case and the totals over the corpus."""
    total: Counter[str] = Counter()
    lines = [f"{'case':<26} {'versions exp/found':>18} {'spurious':>8} {'missing':>7} "
             f"{'upstream false':>14} {'upstream missing':>16} {'metrics miss/spur':>17} {'other miss/spur':>15}"]
    for counts in sorted(collected, key=lambda c: c["case"]):
        if counts.get("run_failed"):
            total["runs_failed"] += 1
            lines.append(f"{counts['case']:<26} notebooks did not run to the end")
            continue
        total.update({k: v for k, v in counts.items() if isinstance(v, int)})
        other_missing = sum(counts.get(f"{c}_missing", 0) for c in _OTHER)
        other_spurious = sum(counts.get(f"{c}_spurious", 0) for c in _OTHER)
        lines.append(
            f"{counts['case']:<26} {counts.get('versions_expected', 0):>8}/{counts.get('versions_found', 0):<9} "
            f"{counts.get('versions_spurious', 0):>8} {counts.get('versions_missing', 0):>7} "
            f"{counts.get('upstream_false', 0):>14} {counts.get('upstream_missing', 0):>16} "
            f"{counts.get('metrics_missing', 0):>8}/{counts.get('metrics_spurious', 0):<8} "
            f"{other_missing:>7}/{other_spurious:<7}")
    lines.append(
        f"TOTAL over {len(collected)} case(s): versions expected {total['versions_expected']}, "
        f"found {total['versions_found']}, spurious {total['versions_spurious']}, "
        f"missing {total['versions_missing']} (matched {total['versions_matched']}; wrong class "
        f"{total['version_class_wrong']}, wrong chosen parameters {total['version_params_wrong']}); "
        f"upstream files of matched versions: expected {total['upstream_expected']}, false "
        f"{total['upstream_false']}, missing {total['upstream_missing']} (plus "
        f"{total['upstream_of_missing_versions']} belonging to missing versions); metrics expected "
        f"{total['metrics_expected']}, missing {total['metrics_missing']}, spurious {total['metrics_spurious']}; "
        f"written files expected {total['written_expected']}, missing {total['written_missing']}, spurious "
        f"{total['written_spurious']}; "
        + ", ".join(f"{c} missing {total[f'{c}_missing']} spurious {total[f'{c}_spurious']}" for c in _OTHER)
        + (f"; {total['runs_failed']} case(s) did not run" if total["runs_failed"] else "")
        + (f"; views unreadable in {total['views_unreadable']} case-view(s) (those categories unchecked)"
           if total["views_unreadable"] else ""))
    return "\n".join(lines)


_OTHER = ("searches", "cross_validations", "saved", "loaded", "unrecorded_models")
