"""Policy files: where they are found, precise errors for bad ones, SHA-256 stamps, changes recorded."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

import pytest

from nbgov.canonical import encode
from nbgov.errors import PolicyError
from nbgov.governance.policy import Policy, load_policy, policy_template, record_policy
from nbgov.ledger.facade import Ledger
from support.helpers import invoke_cli


def test_the_template_is_the_documented_defaults(tmp_path: Path) -> None:
    path = tmp_path / "nbgov-policy.toml"
    path.write_text(policy_template())
    loaded = load_policy(path)
    assert loaded is not None
    assert loaded.policy == Policy()
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.policy.fairness.min_demographic_parity_ratio == 0.8
    assert loaded.policy.approvals_required("high") == 1


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        # wrong types: never coerced
        ("[fairness]\nmin_demographic_parity_ratio = \"0.8\"\n", "fairness.min_demographic_parity_ratio",
         "input should be a valid number, got '0.8'"),
        ("[fairness]\nrequired = \"yes\"\n", "fairness.required", "valid boolean, got 'yes'"),
        ("[fairness]\nmin_group_size = 30.5\n", "fairness.min_group_size", "valid integer, got 30.5"),
        ("[metrics]\nminimum = { auc = \"high\" }\n", "metrics.minimum.auc", "valid number, got 'high'"),
        ("[fairness]\nsensitive_features = \"race\"\n", "fairness.sensitive_features", "valid list"),
        ("fairness = 3\n", "fairness", "valid dictionary"),
        # out of range
        ("[fairness]\nmin_demographic_parity_ratio = 1.5\n", "fairness.min_demographic_parity_ratio",
         "less than or equal to 1, got 1.5"),
        ("[fairness]\nalpha = 0\n", "fairness.alpha", "greater than 0"),
        ("[approvals]\nrequired = 0\n", "approvals.required", "greater than or equal to 1"),
        ("default_tier = \"extreme\"\n", "default_tier", "'low', 'medium' or 'high', got 'extreme'"),
        ("[provenance]\nrequired = [\"source\", \"sponsor\"]\n", "provenance.required.1", "got 'sponsor'"),
        ("[tiers.high]\nreview_every_days = 30\n", "tiers", "missing tier(s) low, medium"),
        ("[tiers.high]\nrisk_categories = [\"bias\"]\n[tiers.low]\nreview_every_days = 1\n"
         "[tiers.medium]\nreview_every_days = 1\n", "tiers.high.review_every_days", "required key is missing"),
        # unknown keys, at the top and nested
        ("[fairnes]\nrequired = true\n", "fairnes", "unknown key"),
        ("[fairness]\nmax_dp_difference = 0.1\n", "fairness.max_dp_difference", "unknown key"),
        ("[drift]\npsi_warn = 0.1\n", "drift.psi_warn", "unknown key"),
        ("version = 2\n", "version", "input should be 1, got 2"),
    ],
)
def test_malformed_policies_name_the_file_key_and_problem(tmp_path: Path, text: str, key: str,
                                                          problem: str) -> None:
    path = tmp_path / "nbgov-policy.toml"
    path.write_text(text)
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    error = info.value
    assert (error.source, error.key) == (str(path), key)
    assert problem in error.problem, error.problem
    assert error.message.startswith(f"{path}: {key}: ")
    assert "\n" not in error.one_line()


def test_several_problems_are_counted_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text("[fairness]\nbogus = 1\nalpha = 7\n[drift]\nbins = 1\n")
    with pytest.raises(PolicyError, match=r"\(and 2 more problems\)"):
        load_policy(path)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "policy file not found"),
        (b"[fairness\nrequired = true\n", "not valid TOML"),
        (b"\xff\xfe\x00", "not UTF-8 text"),
    ],
)
def test_unreadable_policy_files(tmp_path: Path, content: bytes | None, problem: str) -> None:
    path = tmp_path / "nbgov-policy.toml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert info.value.source == str(path) and problem in info.value.problem


def test_a_missing_configured_policy_is_an_error_not_a_default(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(PolicyError, match="policy file not found"):
        load_policy(cwd=tmp_path, environ={"NBGOV_POLICY": str(missing)})
    with pytest.raises(PolicyError, match="no policy is configured"):
        load_policy(cwd=tmp_path, environ={})
    assert load_policy(cwd=tmp_path, environ={}, required=False) is None


def test_discovery_order(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "notebooks").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (project / "nbgov-policy.toml").write_text("[approvals]\nrequired = 2\n")
    found = load_policy(cwd=project / "notebooks", environ={})
    assert found is not None and found.source == str(project / "nbgov-policy.toml")
    assert found.policy.approvals.required == 2
    other = tmp_path / "other.toml"
    other.write_text("[approvals]\nrequired = 3\n")
    by_env = load_policy(cwd=project, environ={"NBGOV_POLICY": str(other)})
    assert by_env is not None and by_env.policy.approvals.required == 3


def test_pyproject_table_and_its_canonical_hash(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.nbgov]\nhome = '.ledger'\n[tool.nbgov.policy.approvals]\nrequired = 2\n")
    loaded = load_policy(cwd=tmp_path, environ={})
    assert loaded is not None
    assert loaded.source.endswith("pyproject.toml [tool.nbgov.policy]")
    assert loaded.sha256 == hashlib.sha256(encode({"approvals": {"required": 2}})).hexdigest()
    (tmp_path / "nbgov-policy.toml").write_text("")
    with pytest.raises(PolicyError, match="a policy is defined both here and in"):
        load_policy(cwd=tmp_path, environ={})


def test_a_bad_pyproject_table_names_its_key(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.nbgov.policy.fairness]\nalpha = 'x'\n")
    with pytest.raises(PolicyError) as info:
        load_policy(cwd=tmp_path, environ={})
    assert info.value.key == "fairness.alpha" and "pyproject.toml" in info.value.source


def test_policy_changes_are_recorded_once_each(tmp_path: Path, home: Path) -> None:
    ledger = Ledger.init(home)
    path = tmp_path / "nbgov-policy.toml"
    path.write_text("[approvals]\nrequired = 1\n")
    first = load_policy(path)
    assert first is not None
    assert record_policy(ledger, first) is not None
    assert record_policy(ledger, first) is None  # unchanged: nothing new
    path.write_text("[approvals]\nrequired = 2\n")
    second = load_policy(path)
    assert second is not None and record_policy(ledger, second) is not None
    rows = ledger.query("SELECT sha256, previous_sha256, policy FROM policies ORDER BY seq")
    assert list(rows["sha256"]) == [first.sha256, second.sha256]
    assert list(rows["previous_sha256"])[1] == first.sha256
    assert '"required":2' in rows["policy"].iloc[1].replace(" ", "")


def test_cli_policy_commands(tmp_path: Path) -> None:
    created = invoke_cli("policy", "init", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    assert tomllib.loads((tmp_path / "nbgov-policy.toml").read_text())["approvals"]["role"] == "approver"
    again = invoke_cli("policy", "init", cwd=tmp_path)
    assert again.returncode == 1 and "already exists; not overwritten" in again.stderr
    ok = invoke_cli("policy", "validate", cwd=tmp_path)
    assert ok.returncode == 0 and ok.stdout.startswith("ok: ")
    bad = tmp_path / "bad.toml"
    bad.write_text("[vendors]\nmax_age_days = -1\n")
    failed = invoke_cli("policy", "validate", str(bad), cwd=tmp_path)
    assert failed.returncode == 1
    assert failed.stderr.startswith(f"nbgov: error: {bad}: vendors.max_age_days: ")
    assert len(failed.stderr.strip().splitlines()) == 1
    shown = invoke_cli("policy", "show", "--json", cwd=tmp_path)
    assert '"sha256"' in shown.stdout and shown.returncode == 0


def test_policy_errors_never_echo_a_secret(tmp_path: Path) -> None:
    # The policy and the alert sinks share one loader: neither echoes a value that may be a secret.
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    path = tmp_path / "nbgov-policy.toml"
    path.write_text(f"[fairness]\nalpha = '{token}'\n")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert info.value.key == "fairness.alpha" and token not in info.value.one_line()
    assert "not shown" in info.value.problem
    path.write_text("[fairness]\nalpha = 'high'\n")  # an ordinary value is still shown
    with pytest.raises(PolicyError, match="got 'high'"):
        load_policy(path)
