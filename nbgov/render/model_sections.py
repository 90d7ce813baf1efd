"""What the model documentation page says, before it is rendered: its sections as blocks of
plain values, and the pictures among them.

:func:`page_sections` turns a :class:`~nbgov.render.model_document.ModelDocument` into the page's
sections in order (:data:`SECTIONS`), each a list of blocks: headings, paragraphs, label/value
pairs, lists, tables and figures, whose parts are plain values or :class:`Code`, :class:`Status`
and :class:`Lines`; :func:`page_summary` gives the introduction, badges and footer. Parts are left
unescaped: :mod:`nbgov.render.model_page` escapes each one as it writes HTML or Markdown (the SVG
pictures escape their own text). The pictures: the lineage from :mod:`nbgov.render.svg`, bias
measures over time from :mod:`nbgov.render.charts`, and per-group selection rates against the
policy's floor (:func:`group_rates_svg`), drawn here.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from nbgov.governance.policy import fairness_limit
from nbgov.render.model_document import ModelDocument
from nbgov.render.svg import _attr, _fit, _open_svg, _text

__all__ = ["NONE", "NOT_XML", "SECTIONS", "Block", "Code", "Lines", "Status", "group_rates_svg",
           "page_sections", "page_summary", "plain", "rate_floor"]

NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
NONE = "\u2014"  # an em dash for a fact that is not recorded
_BAR, _BREACH, _GREY = "#0072B2", "#D55E00", "#BBBBBB"

SECTIONS = (("gaps", "Gaps"), ("model", "Model"), ("intended-use", "Intended use"),
            ("training-data", "Training data and provenance"), ("parameters", "Parameters"),
            ("evaluation", "Evaluation"), ("lifecycle", "Lifecycle and policy checks"),
            ("approvals", "Approvals"), ("risks", "Risks"), ("vendors", "Vendors"),
            ("reviews", "Reviews"))

# -- content: blocks both renderers present ---------------------------------------------------------


@dataclass(frozen=True)
class Code:
    """A value shown as code (a fingerprint, a path, an id)."""
    value: Any


@dataclass(frozen=True)
class Status:
    """A verdict or state word, coloured in HTML."""
    value: Any


@dataclass(frozen=True)
class Lines:
    """Values shown one under the other in a table cell."""
    parts: tuple[Any, ...]


# Blocks: ("h3", title), ("p", parts, css), ("pairs", [(label, value)]), ("list", items, css),
# ("table", headers, rows), ("figure", svg, caption). Parts and cells are plain values, Code,
# Status or Lines; every one is escaped by the renderer.
Block = tuple[Any, ...]


def plain(value: Any) -> str:
    """A recorded value as readable text (None as a dash)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NONE
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(plain(v) for v in value) if value else NONE
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return NOT_XML.sub("\ufffd", str(value))


# -- pictures ---------------------------------------------------------------------------------------


def rate_floor(attribute: dict[str, Any], limits: dict[str, Any] | None) -> tuple[float | None, str]:
    """The lowest selection rate within the policy's selection-rate limits, given the highest rate
    among the groups compared, and how it was found (None when no limit applies)."""
    rates = [float(g["selection_rate"]) for g in attribute.get("groups", [])
             if g.get("sufficient") and g.get("selection_rate") is not None]
    if not rates or not limits:
        return None, ""
    highest, floors, parts = max(rates), [], []
    ratio = limits.get("min_demographic_parity_ratio")
    difference = limits.get("max_demographic_parity_difference")
    if ratio is not None:
        floors.append(highest * float(ratio))
        parts.append(f"ratio \u2265 {float(ratio):g}")
    if difference is not None:
        floors.append(highest - float(difference))
        parts.append(f"difference \u2264 {float(difference):g}")
    if not floors:
        return None, ""
    return max(floors), f"{' and '.join(parts)} of the highest rate {highest:.3g}"


def group_rates_svg(attribute: dict[str, Any], limits: dict[str, Any] | None, *, width: int = 640) -> str:
    """Horizontal bars of each group's selection rate, with the policy's floor as a dashed line.

    Groups below the floor are drawn in vermillion (class ``bar breach``); groups too small to
    judge in grey (class ``bar insufficient``). The floor is ``<g class="limit" data-value="..">``.
    """
    groups = [g for g in attribute.get("groups", []) if g.get("selection_rate") is not None]
    floor, how = rate_floor(attribute, limits)
    title = f"Selection rate by {attribute.get('attribute')}"
    row, top, left, right = 24.0, 50.0, 150.0, width - 170.0
    height = top + row * max(len(groups), 1) + 40
    parts = [_open_svg(width, height, f"{title}: {len(groups)} groups"
                       + (f", policy floor {floor:.3g}" if floor is not None else "")),
             f'<text x="{width / 2:.1f}" y="20" text-anchor="middle" font-size="14" font-weight="600">'
             f"{_text(_fit(title, width - 20, 14))}</text>"]

    def x(value: float) -> float:
        return left + max(0.0, min(1.0, value)) * (right - left)

    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<path d="M{x(tick):.1f},{top - 4:.1f}V{height - 34:.1f}" stroke="#E3E3E3"/>'
                     f'<text x="{x(tick):.1f}" y="{height - 20:.1f}" text-anchor="middle" fill="#333333">'
                     f"{tick:g}</text>")
    for number, group in enumerate(groups):
        rate, y = float(group["selection_rate"]), top + number * row
        judged = bool(group.get("sufficient"))
        breach = judged and floor is not None and rate < floor - 1e-12
        colour, css = (_BREACH, "bar breach") if breach else (_BAR, "bar") if judged else (
            _GREY, "bar insufficient")
        name, size = str(group.get("group")), group.get("n")
        label = f"{rate:.3f} (n={size})" + ("" if judged else " not judged")
        tip = f"{name}: selection rate {rate:.4g}, n={size}"
        parts.append(
            f'<g class="{css}" data-group={_attr(name)} data-value="{rate!r}"><title>{_text(tip)}</title>'
            f'<text x="{left - 8:.1f}" y="{y + 15:.1f}" text-anchor="end">'
            f"{_text(_fit(name, left - 16))}</text>"
            f'<rect x="{left:.1f}" y="{y + 3:.1f}" width="{x(rate) - left:.1f}" height="{row - 8:.1f}" '
            f'fill="{colour}"/><text x="{x(rate) + 6:.1f}" y="{y + 15:.1f}">{_text(label)}</text></g>')
    if floor is not None:
        parts.append(f'<g class="limit" data-value="{floor!r}"><title>{_text(how)}</title>'
                     f'<path d="M{x(floor):.1f},{top - 6:.1f}V{height - 34:.1f}" stroke="{_BREACH}" '
                     f'stroke-width="1.5" stroke-dasharray="6 4"/>'
                     f'<text x="{x(floor):.1f}" y="{top - 10:.1f}" text-anchor="middle" fill="{_BREACH}" '
                     f'font-size="11">policy floor {floor:.3g}'
                     "</text></g>")
    return "".join(parts) + "</svg>"


def _ratio_history_svg(doc: ModelDocument) -> str | None:
    """Demographic parity ratio of each attribute across this version's bias tests (two or more)."""
    from nbgov.render.charts import line_chart_svg

    if len(doc.fairness) < 2:
        return None
    series: dict[str, list[tuple[dt.datetime, float]]] = {}
    for test in reversed(doc.fairness):
        moment = dt.datetime.fromisoformat(str(test["tested_at"]))
        for attribute in test["attributes"]:
            ratio = attribute.get("demographic_parity_ratio")
            if ratio is not None:
                series.setdefault(str(attribute["attribute"]), []).append((moment, float(ratio)))
    if not series:
        return None
    limits = doc.fairness[0].get("limits") or {}
    ratio = fairness_limit("demographic_parity_ratio")
    assert ratio is not None
    limit = limits.get(ratio.rule)
    return line_chart_svg(list(series.items()), limit=limit, breach=ratio.breach,
                          limit_label=None if limit is None else f"policy {ratio.side} {limit:g}",
                          title=f"{doc.ref}: demographic parity ratio per bias test",
                          y_label="demographic parity ratio")


# -- the sections -----------------------------------------------------------------------------------


def _model(doc: ModelDocument) -> list[Block]:
    i = doc.identity
    session = i.get("session") or {}
    commit = session.get("git_commit")
    fit = i.get("fit_data") or {}
    prints = [f"{k}: {v.get('digest') if isinstance(v, dict) else v}" for k, v in sorted(fit.items())]
    return [("pairs", [
        ("Name", i["model"]), ("Version", i["version"]), ("Fitted at", i["fitted_at"]),
        ("Author", f"{i['author']} ({i['author_source']})"), ("Estimator", Code(i["estimator"])),
        ("Model fingerprint", Code(i.get("model_fingerprint"))), ("Training rows", i.get("n_samples")),
        ("Features", i.get("features") or i.get("n_features")),
        ("Fingerprints of the data fit received", Lines(tuple(Code(p) for p in prints)) if prints else None),
        ("Notebook", Code(i.get("notebook"))), ("Notebook SHA-256", Code(session.get("notebook_sha256"))),
        ("Session", Code(i.get("session_id"))), ("Cell", Code(i.get("cell"))),
        ("Review run", i.get("run_id")),
        ("Git commit", Lines((Code(commit), "with uncommitted changes"))
         if commit and session.get("git_dirty") else Code(commit)),
        ("Host, Python", ", ".join(str(session[k]) for k in ("host", "python") if session.get(k)) or None),
        ("Packages SHA-256", Code(session.get("packages_sha256"))), ("nbgov", session.get("nbgov_version")),
        ("Recorded as event", Code(i["event_id"])),
    ])]


def _description(doc: ModelDocument) -> list[Block]:
    d = doc.description
    if d is None:
        return [("p", ("No description recorded. Record one with ",
                       Code(f"nbgov model describe {doc.ref} --intended-use ...")), "none")]
    return [("pairs", [
        ("Intended use", d["intended_use"]), ("Out of scope", d["out_of_scope"]),
        ("Known limitations", d["limitations"]), ("Owner", d["owner"]), ("Contact", d["contact"]),
        ("Applies to", d["applies_to"]),
        ("Described", f"by {d['described_by']} at {d['described_at']} (event {d['event_id']})")])]


def _training(doc: ModelDocument) -> list[Block]:
    from nbgov.render.svg import lineage_svg

    blocks: list[Block] = []
    if not doc.training_data:
        blocks.append(("p", ("No dataset is upstream of this version in the lineage.",), "none"))
    for d in doc.training_data:
        others = [p for p in d["paths"] if p != d["path"]]
        declared = f"by {d['declared_by']} at {d['declared_at']}" if d["declared"] else None
        how = f"{plain(d['algorithm'])}, {plain(d['coverage'])}"
        blocks += [("h3", d["path"]), ("pairs", [
            ("Fingerprint", Lines((Code(d["fingerprint"]), how))),
            ("Also seen as", others or None), ("Rows", d["rows"]), ("Columns", d["columns"]),
            ("How it came", "written by recorded work" if d["derived"] else "read"),
            ("Source", d["source"]), ("Licence", d["license"]), ("Owner", d["owner"]),
            ("PII columns", d["contains_pii"]), ("Description", d["description"]), ("Declared", declared),
            ("Classification", d["classification"]),
            ("Provenance (policy rule)", Lines((Status(d["provenance"]), d["provenance_note"])))])]
    lineage = doc.lineage
    picture = lineage_svg(lineage["nodes"], [tuple(e) for e in lineage["edges"]], focus=lineage["focus"],
                          max_width=1000)
    blocks.append(("figure", picture, f"Lineage of {doc.ref}: the datasets and cells it came from and the "
                                      "evaluations made of it."))
    return blocks


def _params(doc: ModelDocument) -> list[Block]:
    blocks: list[Block] = [("table", ["parameter", "value"], [
        [Code(k), Code(json.dumps(v, ensure_ascii=False))] for k, v in sorted(doc.params.items())])
        if doc.params else ("p", ("The fit recorded no parameters.",), "none")]
    if doc.logged_params:
        blocks += [("h3", "Logged with nbgov.log_params"), ("table", ["at", "by", "parameters"], [
            [p["event_time"], p["actor"], Code(json.dumps(p["params"], sort_keys=True))]
            for p in doc.logged_params])]
    return blocks


def _bias_test(test: dict[str, Any]) -> list[Block]:
    limits = test.get("limits")
    blocks: list[Block] = [("p", (
        f"Bias test of {test['tested_at']} by {test['tested_by']}: ", Status(test["verdict"]),
        f" ({plain(test['n'])} predictions; favourable outcome ", Code(test["positive_label"]),
        f"; groups under {plain(test['min_group_size'])} not judged; policy ", Code(test["policy_sha256"]),
        ")"), None)]
    if test["failures"]:
        blocks.append(("list", [f.get("message") for f in test["failures"]], "fail"))
    for attribute in test["attributes"]:
        blocks.append(("h3", f"By {attribute['attribute']}"))
        if attribute.get("reason"):
            blocks.append(("p", (f"Not measurable: {attribute['reason']}",), "warn"))
        blocks.append(("table", ["group", "n", "selection rate", "true positive rate", "false positive rate",
                                 "accuracy", "base rate", "judged"], [
            [g.get("group"), g.get("n"), g.get("selection_rate"), g.get("true_positive_rate"),
             g.get("false_positive_rate"), g.get("accuracy"), g.get("base_rate"),
             "yes" if g.get("sufficient") else f"no: {plain(g.get('reason'))}"]
            for g in attribute["groups"]]))
        floor, how = rate_floor(attribute, limits)
        caption = (f"Dashed line: the lowest selection rate within the policy ({how})." if floor is not None
                   else "No selection-rate limit recorded with this test.")
        blocks.append(("figure", group_rates_svg(attribute, limits), caption))
    return blocks


def _evaluation(doc: ModelDocument) -> list[Block]:
    metrics = [[m["metric"], m["value"] if m["value"] is not None else m["value_json"], m["via"],
                Code(m["dataset"]), m["event_time"], m["actor"]] for m in doc.metrics]
    blocks: list[Block] = [
        ("h3", "Metrics"),
        ("table", ["metric", "value", "via", "evaluation data", "at", "by"], metrics) if metrics
        else ("p", ("No metrics recorded.",), "none"), ("h3", "Bias tests")]
    if doc.fairness:
        blocks.append(("table", ["at", "by", "attribute", "parity difference", "parity ratio",
                                 "equalized odds difference", "significant gaps", "verdict"], [
            [t["tested_at"], t["tested_by"], a["attribute"], a.get("demographic_parity_difference"),
             a.get("demographic_parity_ratio"), a.get("equalized_odds_difference"),
             sum(bool(c.get("significant")) for c in a["comparisons"]), Status(t["verdict"])]
            for t in doc.fairness for a in t["attributes"]]))
        history = _ratio_history_svg(doc)
        if history:
            blocks.append(("figure", history, "Demographic parity ratio of each bias test of this version."))
        blocks += [("h3", "Latest bias test, per group"), *_bias_test(doc.fairness[0])]
    else:
        blocks.append(("p", ("No bias test recorded.",), "none"))
    blocks.append(("h3", "Drift tests"))
    if not doc.drift:
        return [*blocks, ("p", ("No drift test recorded.",), "none")]
    blocks.append(("table", ["at", "by", "features drifted", "verdict"], [
        [t["tested_at"], t["tested_by"], [f["feature"] for f in t["features"] if f["drifted"]] or "none",
         Status(t["verdict"])] for t in doc.drift]))
    blocks += [("p", (f"Latest drift test ({doc.drift[0]['tested_at']}), per feature:",), None), (
        "table", ["feature", "test", "p-value", "effect size", "threshold", "decided by", "drifted"], [
            [f["feature"], f["test"], f["p_value"],
             f"{plain(f['effect_size_name'])} {plain(f['effect_size'])}", f["threshold"], f["decided_by"],
             Status("drifted" if f["drifted"] else "no")]
            for f in doc.drift[0]["features"]])]
    return blocks


def _lifecycle(doc: ModelDocument) -> list[Block]:
    now = doc.check_now
    blocks: list[Block] = [("p", ("State: ", Status(doc.lifecycle["state"])), None)]
    if doc.lifecycle["transitions"]:
        blocks.append(("table", ["at", "from", "to", "reason", "by"], [
            [t["event_time"], t["from_state"], t["to_state"], t["reason"], t["actor"]]
            for t in doc.lifecycle["transitions"]]))
    checks = [[c["event_time"], c["purpose"], Status(c["verdict"]), c["failed"], c["actor"],
               Code(c["policy_sha256"])] for c in doc.checks]
    blocks += [
        ("h3", "Recorded policy checks"),
        ("table", ["at", "purpose", "verdict", "failing rules", "by", "policy"], checks) if checks
        else ("p", ("No policy check recorded.",), "none"),
        ("h3", "The policy's rules applied to these facts now"),
        ("p", (f"Judged at {now['checked_at']} against {now['policy_source']}, not recorded: ",
               Status(now["verdict"])), "muted"),
        ("table", ["status", "rule", "subject", "finding"], [
            [Status(f["status"]), f["code"], f["subject"], f["message"]] for f in now["findings"]])]
    return blocks


def _approvals(doc: ModelDocument) -> list[Block]:
    a = doc.approvals
    blocks: list[Block] = [("p", (f"{a['count']} of {a['required']} required approval(s)"
                                  + (f" ({plain(a['approvers'])})." if a["approvers"] else "."),), None)]
    rows = []
    for d in doc.decisions:
        signature: Any = f"{NONE} (not signed)"
        if d["signature_valid"] is not None:
            signature = (Lines((Status("verifies"), Code(str(d["key_id"])[:16]))) if d["signature_valid"]
                         else Lines((Status("does not verify"), d["signature_problem"])))
        detail = d["note"] if not d["reasons"] else f"{plain(d['reasons'])}: {plain(d['note'])}"
        rows.append([d["event_time"], Status(d["decision"]), f"{d['reviewer']} ({d['actor_source']})",
                     d["role"], detail, signature])
    headers = ["at", "decision", "reviewer", "role", "note, reason or refusal", "signature"]
    blocks.append(("table", headers, rows) if rows else ("p", ("No decision recorded.",), "none"))
    if doc.requests:
        blocks += [("h3", "Requests"), ("table", ["at", "by", "note", "decision"], [
            [r["requested_at"], r["requested_by"], r["note"], r["decision"]] for r in doc.requests])]
    return blocks


def _risks(doc: ModelDocument) -> list[Block]:
    t = doc.risk_tier
    tier = f"not assessed (the policy's default, {t['effective']}, applies)"
    if t["tier"]:
        tier = f"{t['tier']}, set by {t['set_by']} at {t['set_at']}"
        tier += f": {t['reason']}" if t["reason"] else ""
    keys = ("risk_id", "category", "description", "likelihood", "impact", "treatment", "owner", "next_review")
    rows = [[r[k] for k in keys] for r in doc.risks if r["status"] == "open"]
    return [("pairs", [("Risk tier", tier), ("Closed risks", len(doc.risks) - len(rows))]),
            ("table", [k.replace("_", " ").replace("risk id", "risk") for k in keys], rows) if rows
            else ("p", ("No open risk in the register.",), "none")]


def _vendors(doc: ModelDocument) -> list[Block]:
    if not doc.vendors:
        return [("p", ("No vendor is linked to this model.",), "none")]
    return [("table", ["vendor", "service", "used for", "attestations", "current", "evidence"], [
        [v["vendor"], v["service"], "; ".join(f"{k['scope']}: {plain(k['purpose'])}" for k in v["links"]),
         [f"{c['certification']} (period ended {plain(c['period_end'])})" for c in v["certifications"]],
         Lines((Status("current" if v["attestation_current"] else "not current"), *v["current"],
                *v["expired"])),
         Code(v["evidence_fingerprint"])] for v in doc.vendors])]


def _reviews(doc: ModelDocument) -> list[Block]:
    if not doc.reviews:
        return [("p", ("No review run concerning this model is recorded.",), "none")]
    return [("table", ["started", "notebook", "job", "parameters", "status", "error", "output fingerprint"], [
        [r["started_at"], str(r["notebook"]).rsplit("/", 1)[-1], r["job"], r["parameters"],
         Status(r["status"]), f"{r['error_type']}: {r['error_message']}" if r["error_type"] else None,
         Code(r["output_fingerprint"])]
        for r in doc.reviews])]


def page_sections(doc: ModelDocument) -> list[tuple[str, str, list[Block]]]:
    gaps: list[Block] = [("p", ("None: every fact this page covers is recorded in the ledger.",), "ok")]
    if doc.gaps:
        gaps = [("p", (f"The ledger lacks {len(doc.gaps)} fact(s) an audit of this version needs:",), None),
                ("list", list(doc.gaps), "gaps")]
    makers = {"gaps": lambda _: gaps, "model": _model, "intended-use": _description,
              "training-data": _training, "parameters": _params, "evaluation": _evaluation,
              "lifecycle": _lifecycle, "approvals": _approvals, "risks": _risks, "vendors": _vendors,
              "reviews": _reviews}
    return [(anchor, title, makers[anchor](doc)) for anchor, title in SECTIONS]


def page_summary(doc: ModelDocument) -> tuple[str, list[str], str]:
    a, t, ledger, policy = doc.approvals, doc.risk_tier, doc.ledger, doc.policy
    intro = (f"Written from the facts recorded in the nbgov ledger {ledger['ledger_id']} up to event "
             f"{ledger['seq']}, on {doc.generated_at}. What the ledger does not record is listed under Gaps, "
             "never filled in.")
    badges = [f"state: {doc.lifecycle['state']}", f"risk tier: {t['tier'] or 'not assessed'}",
              f"approvals: {a['count']} of {a['required']}", f"gaps: {len(doc.gaps)}"]
    footer = (f"Ledger {ledger['ledger_id']} at {ledger['home']}, head seq {ledger['seq']}, chain hash "
              f"{ledger['chain_hash']} (check it with nbgov verify). "
              + (f"Policy: {policy['source']} (sha256 {policy['sha256']}), recorded {policy['recorded_at']}"
                 + ("." if policy["applied"] else "; this nbgov cannot read it: its defaults were applied.")
                 if policy else "No policy is recorded in the ledger; nbgov's defaults were applied."))
    return intro, badges, footer
