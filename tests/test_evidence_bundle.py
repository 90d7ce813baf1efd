"""`nbgov evidence`: a real bundle of a governed ledger, checked by its own standalone verifier
in a clean virtual environment (Python + cryptography only)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nbgov.evidence.parquet import write_table
from support.bundle_helpers import _clean_env
from support.helpers import governed_ledger, isolated_module_environment, run_cli


def _env(home: Path, policy: Path, **extra: str) -> dict[str, str]:
    return {"NBGOV_HOME": str(home), "NBGOV_POLICY": str(policy), **extra}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A governed ledger where rita approved credit@1, its bundle and the verifier keys handed
    to the auditor separately (built once)."""
    base = tmp_path_factory.mktemp("bundle")
    with isolated_module_environment(base):
        home, policy = governed_ledger(base)
        approved = run_cli("approve", "credit@1", "--note", "reviewed", env=_env(home, policy, NBGOV_ACTOR="rita"))
        assert approved.returncode == 0, approved.stderr
        today = dt.datetime.now(dt.UTC).date()
        bundle = base / "audit"
        made = run_cli("evidence", "--from", str(today - dt.timedelta(days=90)), "--to", str(today),
                       "--out", str(bundle), env=_env(home, policy, NBGOV_ACTOR="ines"))
        assert made.returncode == 0, made.stderr
        assert "events proven against the checkpoint" in made.stdout
        keys = base / "nbgov-keys.txt"
        listed = run_cli("checkpoint", "keys", env=_env(home, policy))
        assert listed.returncode == 0 and listed.stdout.strip()
        keys.write_text(listed.stdout)
    return home, bundle, keys


def _verify(python: Path, bundle: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(python), str(bundle / "verify_bundle.py"), str(bundle), *args],
                          capture_output=True, text=True, cwd=bundle.parent, env=_clean_env(), timeout=300)


def test_the_bundle_holds_the_report_tables_sql_models_and_proofs(exported: tuple[Path, Path, Path]) -> None:
    home, bundle, _ = exported
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["format"] == "nbgov-evidence/1" and manifest["created_by"] == "ines"
    # Every table: its Parquet rows as the manifest says, its SQL beside it.
    for entry in manifest["tables"]:
        assert pq.read_table(bundle / entry["path"]).num_rows == entry["rows"]
        assert (bundle / entry["sql_path"]).read_text().strip()
    # rita's approval is a row, and the event its seq names is in events.parquet with a proof.
    approvals = pq.read_table(bundle / "tables/approvals.parquet").to_pylist()
    [row] = [r for r in approvals if r.get("reviewer") == "rita"]
    events = {r["seq"]: json.loads(r["body"]) for r in pq.read_table(bundle / "events.parquet").to_pylist()}
    assert events[row["seq"]]["type"] == "approval_granted"
    assert events[row["seq"]]["actor"]["id"] == "rita"
    proven = {seq for seq, _ in manifest["events"]["proofs"]}
    assert proven == set(events)
    for entry in manifest["tables"]:
        if entry["seq_column"]:
            seqs = pq.read_table(bundle / entry["path"]).column("seq").to_pylist()
            assert {s for s in seqs if s is not None} <= proven, entry["name"]
    # The model page, linked from the report, documents the approved version.
    page = (bundle / "models/credit-v1.html").read_text()
    assert "credit" in page and "rita" in page
    report = (bundle / "report.html").read_text()
    assert 'href="models/credit-v1.html"' in report and "CC8.1" in report
    # The checkpoint in the bundle is one the ledger recorded.
    note = (bundle / "checkpoint.note").read_text()
    listed = run_cli("--home", str(home), "checkpoint", "list", "--json")
    sizes = [json.loads(line)["size"] for line in listed.stdout.splitlines()]
    assert manifest["checkpoint"]["size"] in sizes and note.split("\n")[1] == str(manifest["checkpoint"]["size"])


def test_the_standalone_verifier_passes_and_fails_after_a_row_is_edited_or_removed(
        exported: tuple[Path, Path, Path], tmp_path: Path, clean_python: Path) -> None:
    import shutil

    _, pristine, keys = exported
    bundle = tmp_path / "audit"
    shutil.copytree(pristine, bundle)
    ok = _verify(clean_python, bundle, "--key", str(keys))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "VERIFIED" in ok.stdout and "WARNING" not in ok.stdout
    target = bundle / "tables/approvals.parquet"
    original = pq.read_table(target)
    edited = original.to_pylist()
    for record in edited:
        if record.get("reviewer") == "rita":
            record["reviewer"] = "someone-else"
    write_table(pa.Table.from_pylist(edited, schema=original.schema), target)
    failed = _verify(clean_python, bundle, "--key", str(keys))
    assert failed.returncode == 1 and "tables/approvals.parquet" in failed.stdout, failed.stdout
    write_table(original.slice(0, original.num_rows - 1), target)  # a row removed
    failed = _verify(clean_python, bundle, "--key", str(keys))
    assert failed.returncode == 1 and "tables/approvals.parquet" in failed.stdout, failed.stdout
    write_table(original, target)
    assert _verify(clean_python, bundle, "--key", str(keys)).returncode == 0


def test_the_verifier_refuses_a_bundle_signed_by_a_key_the_auditor_does_not_trust(
        exported: tuple[Path, Path, Path], tmp_path: Path, clean_python: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from nbgov.ledger.integrity.notes import VerifierKey

    _, bundle, _ = exported
    manifest = json.loads((bundle / "manifest.json").read_text())
    stranger = VerifierKey(manifest["origin"], Ed25519PrivateKey.generate().public_key().public_bytes_raw())
    result = _verify(clean_python, bundle, "--key", stranger.text())
    assert result.returncode == 1 and "trusted" in result.stdout.lower()


def test_bad_input_leaves_nothing_behind(exported: tuple[Path, Path, Path], tmp_path: Path) -> None:
    home, _, _ = exported
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    result = run_cli("--home", str(home), "evidence", "--from", "2026-01-01", "--to", "2026-02-01",
                     "--out", str(taken))
    assert result.returncode == 1 and "not an empty directory" in result.stderr
    assert [p.name for p in taken.iterdir()] == ["notes.txt"]
    result = run_cli("--home", str(home), "evidence", "--from", "2026-03-01", "--to", "2026-02-01",
                     "--out", str(tmp_path / "new"))
    assert result.returncode == 1 and "after it ends" in result.stderr
    result = run_cli("--home", str(home), "evidence", "--from", "March", "--to", "2026-02-01",
                     "--out", str(tmp_path / "new"))
    assert result.returncode == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
