"""Governance commands of the ``nbgov`` CLI: the policy, and the decisions taken under it (check,
approve, reject, request-approval, retire).

Each command parses its options, makes one core call and renders the result; the acting user is
the one nbgov stamps on every event (``JUPYTERHUB_USER``, ``NBGOV_ACTOR`` or the OS login). The
register commands (roles, vendors, risks, data access) are in :mod:`nbgov.cli.registers`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from nbgov.cli.common import DOCUMENT, output_format
from nbgov.cli.common import ledger_of as _ledger
from nbgov.cli.common import settle as _settle
from nbgov.errors import NbgovError


def _policy(path: Path | None) -> Any:
    from nbgov.governance.policy import load_policy

    return load_policy(path)


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
@output_format(*DOCUMENT)
def policy_show(policy_path: Path | None, fmt: str) -> None:
    """Print the effective policy (defaults filled in), its source and SHA-256.

    \b
    Example:
      nbgov policy show --json
    """
    loaded = _policy(policy_path)
    if fmt == "json":
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
@output_format(*DOCUMENT)
@click.pass_context
def check(ctx: click.Context, model: str, policy_path: Path | None, fmt: str) -> None:
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
    click.echo(json.dumps(report.as_dict(), indent=1) if fmt == "json" else report.render())
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


COMMANDS: tuple[click.Command, ...] = (policy, check, approve, reject, request_approval, retire)
