"""Register commands of the ``nbgov`` CLI: roles, vendors, risks and training-data access.

Each command parses its options, makes one core call and renders the result; the acting user is
the one nbgov stamps on every event (``JUPYTERHUB_USER``, ``NBGOV_ACTOR`` or the OS login). The
policy, the check and the approval commands are in :mod:`nbgov.cli.governance`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from nbgov.cli.common import echo_rows, output_format
from nbgov.cli.common import ledger_of as _ledger
from nbgov.cli.common import settle as _settle


def _rows(ledger: Any, fmt: str, sql: str, params: dict[str, Any] | None = None) -> None:
    echo_rows(ledger.query_arrow(sql, params).table, fmt, max_rows=200)


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
@output_format()
@click.pass_context
def role_list(ctx: click.Context, fmt: str) -> None:
    """Who holds which role now.

    \b
    Example:
      nbgov role list
    """
    _rows(_ledger(ctx), fmt, "SELECT subject, role, granted_by, granted_at FROM roles ORDER BY role, subject")


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
@output_format()
@click.pass_context
def vendor_list(ctx: click.Context, fmt: str) -> None:
    """Registered vendors and their attestations.

    \b
    Example:
      nbgov vendor list
    """
    _rows(_ledger(ctx), fmt, """
        SELECT c.vendor, v.service, c.certification, c.period_end, left(v.evidence_fingerprint, 16)
               AS evidence, v.updated_at
        FROM vendors v LEFT JOIN vendor_certifications c USING (vendor) ORDER BY c.vendor""")


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
@output_format()
@click.pass_context
def risk_list(ctx: click.Context, model: str | None, fmt: str) -> None:
    """The current risk register (of MODEL, or of every model).

    \b
    Example:
      nbgov risk list credit_risk
    """
    _rows(_ledger(ctx), fmt, """
        SELECT r.model, t.tier, r.risk_id, r.category, r.likelihood, r.impact, r.treatment, r.owner,
               r.next_review, r.status
        FROM risks r LEFT JOIN risk_tiers t USING (model)
        WHERE $m IS NULL OR r.model = $m ORDER BY r.model, r.risk_id""", {"m": model})


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
@output_format()
@click.pass_context
def data_report(ctx: click.Context, since: str | None, violations: bool, fmt: str) -> None:
    """Who read which classified dataset when, and whether they held a grant.

    \b
    Example:
      nbgov data report --since 2026-10-01 --violations
    """
    import pyarrow as pa

    from nbgov.governance.access import access_report

    frame = access_report(_ledger(ctx), since=since, violations_only=violations)
    echo_rows(pa.Table.from_pandas(frame, preserve_index=False), fmt,
              empty="no reads of classified datasets" + (" without a grant" if violations else ""))


COMMANDS: tuple[click.Command, ...] = (role, vendor, risk, data)
