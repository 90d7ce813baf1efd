"""Governance commands of the ``nbgov`` CLI: policy, check, approve, roles, vendors, risks, data.

Each command parses its options, makes one core call and renders the result; the acting user is
the one nbgov stamps on every event (``JUPYTERHUB_USER``, ``NBGOV_ACTOR`` or the OS login).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from nbgov.cli.common import ledger_of as _ledger
from nbgov.errors import NbgovError


def _settle(ledger: Any) -> None:
    """Move what a command recorded into the ledger before it returns (not left in the spool)."""
    ledger.ingest()


def _policy(path: Path | None) -> Any:
    from nbgov.governance.policy import load_policy

    return load_policy(path)


def _table(ledger: Any, sql: str, params: dict[str, Any] | None = None) -> str:
    from nbgov.cli.formatting import render_table

    return render_table(ledger.query_arrow(sql, params).table, max_rows=200)


_POLICY_OPTION = click.option(
    "--policy", "policy_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Policy file (default: NBGOV_POLICY, nbgov-policy.toml by pyproject.toml, "
         "or [tool.nbgov.policy]).")


# -- policy --------------------------------------------------------------------------------------


@click.group()
def policy() -> None:
    """The policy file: create, validate, show."""


@policy.command("init")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path),
                default=Path("nbgov-policy.toml"))
def policy_init(path: Path) -> None:
    """Write a policy file with every rule at its documented default (never overwrites).

    \b
    Example:
      nbgov policy init && $EDITOR nbgov-policy.toml
    """
    from nbgov.governance.policy import policy_template

    try:
        with path.open("x", encoding="utf-8") as fh:
            fh.write(policy_template())
    except FileExistsError:
        raise NbgovError(f"{path} already exists; not overwritten") from None
    except OSError as exc:
        raise NbgovError(f"cannot write {path}: {exc.strerror}") from None
    click.echo(f"wrote {path}: edit the limits, then `nbgov policy validate`")


@policy.command("validate")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path), required=False)
def policy_validate(path: Path | None) -> None:
    """Check a policy file (default: the policy in force); exit 1 naming the key at fault.

    \b
    Example:
      nbgov policy validate nbgov-policy.toml
    """
    loaded = _policy(path)
    click.echo(f"ok: {loaded.short()}")


@policy.command("show")
@_POLICY_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the effective policy as JSON.")
def policy_show(policy_path: Path | None, as_json: bool) -> None:
    """Print the effective policy (defaults filled in), its source and SHA-256.

    \b
    Example:
      nbgov policy show --json
    """
    loaded = _policy(policy_path)
    if as_json:
        click.echo(json.dumps({"source": loaded.source, "sha256": loaded.sha256,
                               "policy": loaded.policy.as_dict()}, indent=1))
        return
    click.echo(f"# {loaded.source}\n# sha256 {loaded.sha256}")
    for section, values in loaded.policy.as_dict().items():
        click.echo(f"{section} = {json.dumps(values)}")


# -- check, approve, retire ----------------------------------------------------------------------


@click.command()
@click.argument("model")
@_POLICY_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.pass_context
def check(ctx: click.Context, model: str, policy_path: Path | None, as_json: bool) -> None:
    """Check MODEL (NAME or NAME@VERSION) against the policy; exit 1 if anything fails.

    The check is recorded; a passing check moves a trained version to validated.

    \b
    Example:
      nbgov check credit_risk@3
    """
    from nbgov.governance.checks import check_model

    ledger = _ledger(ctx)
    report = check_model(ledger, model, _policy(policy_path))
    _settle(ledger)
    click.echo(json.dumps(report.as_dict(), indent=1) if as_json else report.render())
    if not report.passed:
        ctx.exit(1)


@click.command()
@click.argument("model")
@_POLICY_OPTION
@click.option("--note", default=None, help="A note kept in the signed statement.")
@click.pass_context
def approve(ctx: click.Context, model: str, policy_path: Path | None, note: str | None) -> None:
    """Approve MODEL as the acting user (a reviewer who is not its author, with the role).

    A refused attempt is recorded with its reasons and exits 1. A granted approval is signed with
    your Ed25519 key (created on first use in key_dir; its public half registered in the ledger).

    \b
    Example:
      NBGOV_ACTOR=rita nbgov approve credit_risk@3 --note "bias review 2026-11"
    """
    from nbgov.errors import ApprovalRefused
    from nbgov.governance.approvals import approve as approve_model

    ledger = _ledger(ctx)
    try:
        result = approve_model(ledger, model, _policy(policy_path), note=note)
    except ApprovalRefused as exc:
        _settle(ledger)
        if exc.check is not None:
            click.echo(exc.check.render(), err=True)
        raise
    _settle(ledger)
    click.echo(str(result))


@click.command()
@click.argument("model")
@_POLICY_OPTION
@click.option("--reason", required=True, help="What must change (kept in the signed statement).")
@click.pass_context
def reject(ctx: click.Context, model: str, policy_path: Path | None, reason: str) -> None:
    """Reject MODEL (NAME@VERSION) as the acting user, with a reason; signed like an approval.

    The same rules as approving: not its author, holding the approver role. A refused attempt is
    recorded and exits 1. A rejected version is approved only after it is submitted again.

    \b
    Example:
      NBGOV_ACTOR=rita nbgov reject credit_risk@3 --reason "no drift test on this quarter's data"
    """
    from nbgov.governance.approvals import reject as reject_model

    ledger = _ledger(ctx)
    try:
        result = reject_model(ledger, model, _policy(policy_path), reason=reason)
    finally:
        _settle(ledger)
    click.echo(str(result))


@click.command("request-approval")
@click.argument("model")
@click.option("--note", default=None, help="What reviewers should know.")
@click.pass_context
def request_approval(ctx: click.Context, model: str, note: str | None) -> None:
    """Ask reviewers to review MODEL (NAME@VERSION); a rejected version is submitted again.

    \b
    Example:
      nbgov request-approval credit_risk@3 --note "bias mitigated, see the bias review of 2026-11-20"
    """
    from nbgov.governance.approvals import request_approval as request

    ledger = _ledger(ctx)
    request(ledger, model, note=note)
    _settle(ledger)
    click.echo(f"requested approval of {model}")


@click.command()
@click.argument("model")
@click.option("--reason", required=True, help="Why it is retired.")
@click.pass_context
def retire(ctx: click.Context, model: str, reason: str) -> None:
    """Retire MODEL (NAME@VERSION): it can no longer be approved.

    \b
    Example:
      nbgov retire credit_risk@2 --reason "replaced by credit_risk@3"
    """
    from nbgov.governance.registry import retire as retire_model

    ledger = _ledger(ctx)
    retire_model(ledger, model, reason=reason)
    _settle(ledger)
    click.echo(f"retired {model}")


# -- roles ---------------------------------------------------------------------------------------


@click.group()
def role() -> None:
    """Roles held in the ledger (admin, approver, data_steward, ...)."""


@role.command("grant")
@click.argument("user")
@click.argument("role_name", metavar="ROLE")
@click.option("--reason", default=None)
@click.pass_context
def role_grant(ctx: click.Context, user: str, role_name: str, reason: str | None) -> None:
    """Grant ROLE to USER (admins only; the very first grant of a ledger makes its admin).

    \b
    Example:
      NBGOV_ACTOR=ines nbgov role grant ines admin      # bootstrap, once per ledger
      NBGOV_ACTOR=ines nbgov role grant rita approver
    """
    from nbgov.governance.registry import grant_role

    ledger = _ledger(ctx)
    event = grant_role(ledger, user, role_name, reason=reason)
    _settle(ledger)
    click.echo(f"{user} already holds {role_name}" if event is None else f"granted {role_name} to {user}")


@role.command("revoke")
@click.argument("user")
@click.argument("role_name", metavar="ROLE")
@click.option("--reason", default=None)
@click.pass_context
def role_revoke(ctx: click.Context, user: str, role_name: str, reason: str | None) -> None:
    """Revoke ROLE from USER (admins only, never their own).

    \b
    Example:
      nbgov role revoke rita approver --reason "left the team"
    """
    from nbgov.governance.registry import revoke_role

    ledger = _ledger(ctx)
    revoke_role(ledger, user, role_name, reason=reason)
    _settle(ledger)
    click.echo(f"revoked {role_name} from {user}")


@role.command("list")
@click.pass_context
def role_list(ctx: click.Context) -> None:
    """Who holds which role now.

    \b
    Example:
      nbgov role list
    """
    click.echo(_table(_ledger(ctx), "SELECT subject, role, granted_by, granted_at FROM roles "
                                    "ORDER BY role, subject"))


# -- vendors -------------------------------------------------------------------------------------


@click.group()
def vendor() -> None:
    """Third-party AI vendors, their attestations, and the models that depend on them."""


@vendor.command("register")
@click.argument("name")
@click.option("--service", required=True, help="What the vendor provides (e.g. 'embedding API').")
@click.option("--cert", "certs", multiple=True, metavar="NAME:YYYY-MM-DD",
              help="An attestation and the end of the period it covers (repeatable).")
@click.option("--evidence", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The report or certificate file (fingerprinted, not copied).")
@click.option("--contact", default=None)
@click.pass_context
def vendor_register(ctx: click.Context, name: str, service: str, certs: tuple[str, ...],
                    evidence: Path | None, contact: str | None) -> None:
    """Register (or update) a vendor.

    \b
    Example:
      nbgov vendor register Acme --service "credit bureau scores" \\
          --cert "SOC 2 Type II:2026-06-30" --evidence acme-soc2.pdf
    """
    from nbgov.governance.vendors import register_vendor

    ledger = _ledger(ctx)
    register_vendor(ledger, name, service=service, certifications=certs, evidence=evidence,
                    contact=contact)
    _settle(ledger)
    click.echo(f"registered vendor {name} ({len(certs)} attestation(s))")


@vendor.command("link")
@click.argument("name")
@click.argument("model")
@click.option("--purpose", default=None)
@click.pass_context
def vendor_link(ctx: click.Context, name: str, model: str, purpose: str | None) -> None:
    """Record that MODEL (NAME for every version, or NAME@VERSION) depends on vendor NAME.

    \b
    Example:
      nbgov vendor link Acme credit_risk --purpose "bureau score feature"
    """
    from nbgov.governance.registry import parse_model_spec
    from nbgov.governance.vendors import link_vendor

    model_name, version = parse_model_spec(model)
    ledger = _ledger(ctx)
    link_vendor(ledger, name, model_name, version=version, purpose=purpose)
    _settle(ledger)
    click.echo(f"linked {model} to vendor {name}")


@vendor.command("list")
@click.pass_context
def vendor_list(ctx: click.Context) -> None:
    """Registered vendors and their attestations.

    \b
    Example:
      nbgov vendor list
    """
    click.echo(_table(_ledger(ctx), """
        SELECT c.vendor, v.service, c.certification, c.period_end, left(v.evidence_fingerprint, 16)
               AS evidence, v.updated_at
        FROM vendors v LEFT JOIN vendor_certifications c USING (vendor) ORDER BY c.vendor"""))


# -- risks ---------------------------------------------------------------------------------------


@click.group()
def risk() -> None:
    """The risk register: risks per model and each model's risk tier."""


@risk.command("add")
@click.argument("model")
@click.option("--category", required=True,
              type=click.Choice(["bias", "drift", "unauthorized_data_access", "vendor", "misuse"]))
@click.option("--description", required=True)
@click.option("--likelihood", required=True, type=click.Choice(["low", "medium", "high"]))
@click.option("--impact", required=True, type=click.Choice(["low", "medium", "high"]))
@click.option("--treatment", required=True, type=click.Choice(["mitigate", "accept", "transfer", "avoid"]))
@click.option("--owner", required=True)
@click.option("--next-review", required=True, metavar="YYYY-MM-DD")
@click.option("--id", "risk_id", default=None, help="Risk id (default: the category); reuse to update.")
@click.option("--status", type=click.Choice(["open", "closed"]), default="open", show_default=True)
@click.pass_context
def risk_add(ctx: click.Context, /, model: str, **fields: Any) -> None:
    """Add a risk to MODEL's register, or update one (same --id).

    \b
    Example:
      nbgov risk add credit_risk --category bias --description "denial-rate gap by race" \\
          --likelihood medium --impact high --treatment mitigate --owner ana --next-review 2027-03-01
    """
    from nbgov.governance.risks import record_risk

    ledger = _ledger(ctx)
    record_risk(ledger, model, **fields)
    _settle(ledger)
    click.echo(f"recorded {fields['risk_id'] or fields['category']} risk for {model}")


@risk.command("tier")
@click.argument("model")
@click.argument("tier", type=click.Choice(["low", "medium", "high"]))
@click.option("--reason", default=None)
@click.pass_context
def risk_tier(ctx: click.Context, model: str, tier: str, reason: str | None) -> None:
    """Set MODEL's risk tier (decides approvals, review cadence and required risk categories).

    \b
    Example:
      nbgov risk tier credit_risk high --reason "automated credit decisions"
    """
    from nbgov.governance.risks import set_tier

    ledger = _ledger(ctx)
    set_tier(ledger, model, tier, reason=reason)
    _settle(ledger)
    click.echo(f"{model} is {tier} risk")


@risk.command("list")
@click.argument("model", required=False)
@click.pass_context
def risk_list(ctx: click.Context, model: str | None) -> None:
    """The current risk register (of MODEL, or of every model).

    \b
    Example:
      nbgov risk list credit_risk
    """
    click.echo(_table(_ledger(ctx), """
        SELECT r.model, t.tier, r.risk_id, r.category, r.likelihood, r.impact, r.treatment, r.owner,
               r.next_review, r.status
        FROM risks r LEFT JOIN risk_tiers t USING (model)
        WHERE $m IS NULL OR r.model = $m ORDER BY r.model, r.risk_id""", {"m": model}))


# -- data access ---------------------------------------------------------------------------------


@click.group()
def data() -> None:
    """Dataset classification, access grants and the data-access report."""


@data.command("classify")
@click.argument("path", type=click.Path(path_type=Path))
@click.argument("classification", type=click.Choice(["public", "internal", "confidential", "restricted"]))
@click.option("--reason", default=None)
@click.pass_context
def data_classify(ctx: click.Context, path: Path, classification: str, reason: str | None) -> None:
    """Classify the dataset at PATH (data stewards and admins).

    \b
    Example:
      nbgov data classify data/applicants.parquet restricted --reason "contains SSNs"
    """
    from nbgov.governance.access import classify

    ledger = _ledger(ctx)
    classify(ledger, path, classification, reason=reason)
    _settle(ledger)
    click.echo(f"{path} is {classification}")


@data.command("grant")
@click.argument("user")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--expires", default=None, metavar="YYYY-MM-DD", help="Last day the grant holds.")
@click.option("--reason", default=None)
@click.pass_context
def data_grant(ctx: click.Context, user: str, path: Path, expires: str | None, reason: str | None) -> None:
    """Let USER read the classified dataset at PATH (data stewards and admins).

    \b
    Example:
      nbgov data grant ana data/applicants.parquet --expires 2027-03-31 --reason "model rebuild"
    """
    from nbgov.governance.access import grant_access

    ledger = _ledger(ctx)
    grant_access(ledger, user, path, expires=expires, reason=reason)
    _settle(ledger)
    click.echo(f"granted {user} access to {path}" + (f" until {expires}" if expires else ""))


@data.command("revoke")
@click.argument("user")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--reason", default=None)
@click.pass_context
def data_revoke(ctx: click.Context, user: str, path: Path, reason: str | None) -> None:
    """Withdraw USER's access to the dataset at PATH (data stewards and admins).

    \b
    Example:
      nbgov data revoke ana data/applicants.parquet
    """
    from nbgov.governance.access import revoke_access

    ledger = _ledger(ctx)
    revoke_access(ledger, user, path, reason=reason)
    _settle(ledger)
    click.echo(f"revoked {user}'s access to {path}")


@data.command("report")
@click.option("--since", default=None, metavar="YYYY-MM-DD")
@click.option("--violations", is_flag=True, help="Only reads that needed a grant and had none.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv"]), default="table", show_default=True)
@click.pass_context
def data_report(ctx: click.Context, since: str | None, violations: bool, fmt: str) -> None:
    """Who read which classified dataset when, and whether they held a grant.

    \b
    Example:
      nbgov data report --since 2026-10-01 --violations
    """
    from nbgov.governance.access import access_report

    frame = access_report(_ledger(ctx), since=since, violations_only=violations)
    if fmt == "csv":
        click.echo(frame.to_csv(index=False), nl=False)
    elif frame.empty:
        click.echo("no reads of classified datasets" + (" without a grant" if violations else ""))
    else:
        click.echo(frame.to_string(index=False))


COMMANDS = (policy, check, approve, reject, request_approval, retire, role, vendor, risk, data)
