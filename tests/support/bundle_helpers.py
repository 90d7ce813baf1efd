"""Evidence bundles built from real ledgers, in the layout the bundle verifier checks.

The notes here are signed by this module's own C2SP signed-note signer (independent of the
verifier's reader); keys are deterministic Ed25519 keys derived from a label, so a test can make
"the right key" and "another key" by name.

Layout written by :func:`build_bundle`::

    BUNDLE/manifest.json  manifest.sig  checkpoint.note  events.parquet
           tables/<name>.parquet  tables/<name>.sql  report.html  models/<ref>.html
           verify_bundle.py
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import nbgov.evidence.verifier as verifier_module
from nbgov.evidence.parquet import write_table
from nbgov.ledger.facade import Ledger
from nbgov.ledger.integrity.chain import leaf_hash

VERIFIER_SOURCE = Path(verifier_module.__file__)
MANIFEST_NOTE = "nbgov-evidence-manifest"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

#: A derived table with a seq column: the capture events of models, with their JSON payload.
MODEL_EVENTS_SQL = """SELECT seq, event_time, type, actor, payload FROM events
WHERE type IN ('dataset_read', 'model_fitted', 'metrics_logged', 'bias_test', 'role_granted')
ORDER BY seq"""
#: An aggregate without a seq column.
ACTORS_SQL = "SELECT actor, count(*) AS events, min(seq) AS first_seq FROM events GROUP BY actor ORDER BY actor"


# -- keys and signed notes ------------------------------------------------------------------------

def ed25519_key(label: str) -> Ed25519PrivateKey:
    """A deterministic Ed25519 key for *label*."""
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"nbgov test key " + label.encode()).digest())


def public_raw(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def note_key_id(name: str, public: bytes) -> bytes:
    """C2SP signed-note Ed25519 key id: SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n\x01" + public).digest()[:4]


def verifier_key(name: str, private: Ed25519PrivateKey) -> str:
    """``<name>+<hex key id>+<base64(0x01 || public key)>``."""
    public = public_raw(private)
    encoded = base64.b64encode(b"\x01" + public).decode()
    return f"{name}+{note_key_id(name, public).hex()}+{encoded}"


def sign_note(text: str, name: str, private: Ed25519PrivateKey) -> str:
    """The signed note of *text* (ending in a newline) by *private* under *name*."""
    assert text.endswith("\n"), "a note's text ends with a newline"
    signature = private.sign(text.encode())
    blob = base64.b64encode(note_key_id(name, public_raw(private)) + signature).decode()
    return f"{text}\n\u2014 {name} {blob}\n"


def checkpoint_text(origin: str, size: int, root: bytes) -> str:
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


# -- reading the ledger ---------------------------------------------------------------------------

def ledger_events(home: Path, seqs: Iterable[int] | None = None) -> pa.Table:
    """events.parquet's rows from the ledger: seq, ingested_at (the leaf's exact text), body.

    Each row is checked to hash to the leaf the ledger stored, so the text forms are the hashed ones.
    """
    ledger = Ledger(home)
    table = ledger.query_arrow(
        f"SELECT seq, strftime(ingested_at AT TIME ZONE 'UTC', '{TIME_FORMAT}') AS ingested_at, "
        "decode(body) AS body, leaf_hash FROM event_log ORDER BY seq").table
    wanted = None if seqs is None else set(seqs)
    rows = [row for row in table.to_pylist() if wanted is None or row["seq"] in wanted]
    for row in rows:
        assert leaf_hash(row["body"].encode(), row["ingested_at"], row["seq"]) == row["leaf_hash"], row["seq"]
    return pa.table({"seq": pa.array([r["seq"] for r in rows], pa.int64()),
                     "ingested_at": pa.array([r["ingested_at"] for r in rows], pa.string()),
                     "body": pa.array([r["body"] for r in rows], pa.string())})


# -- bundles --------------------------------------------------------------------------------------

def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Bundle:
    """A bundle on disk and the key that signed it."""

    path: Path
    origin: str
    key: Ed25519PrivateKey
    vkey: str = field(init=False)

    def __post_init__(self) -> None:
        self.vkey = verifier_key(self.origin, self.key)

    @property
    def manifest(self) -> dict[str, Any]:
        return json.loads((self.path / "manifest.json").read_text())

    def write_manifest(self, manifest: dict[str, Any], *, sign: bool = True,
                       key: Ed25519PrivateKey | None = None) -> None:
        """Write *manifest* (and, with *sign*, a manifest.sig over it by *key*, default the bundle's)."""
        data = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
        (self.path / "manifest.json").write_bytes(data)
        if sign:
            text = f"{MANIFEST_NOTE}\n{hashlib.sha256(data).hexdigest()}\n"
            (self.path / "manifest.sig").write_text(sign_note(text, self.origin, key or self.key))

    def edit_manifest(self, change: Callable[[dict[str, Any]], None], *, sign: bool = True) -> None:
        manifest = self.manifest
        change(manifest)
        self.write_manifest(manifest, sign=sign)

    def relist(self) -> None:
        """Re-sign the manifest with the current SHA-256 (and table row counts) of every listed file."""
        def update(manifest: dict[str, Any]) -> None:
            events = manifest["events"]
            events["sha256"] = sha256_file(self.path / events["path"])
            for table in manifest["tables"]:
                table["sha256"] = sha256_file(self.path / table["path"])
                table["sql_sha256"] = sha256_file(self.path / table["sql_path"])
                table["rows"] = pq.read_metadata(self.path / table["path"]).num_rows
            for item in manifest["files"]:
                item["sha256"] = sha256_file(self.path / item["path"])

        self.edit_manifest(update)


def build_bundle(home: Path, directory: Path, *, key: Ed25519PrivateKey, origin: str | None = None,
                 seqs: Iterable[int] | None = None, tables: dict[str, tuple[str, str | None]] | None = None,
                 period: tuple[str, str] = ("2026-01-01", "2026-12-31"), row_group_size: int = 64 * 1024,
                 ) -> Bundle:
    """Write an evidence bundle of the ledger at *home* into *directory* (created).

    Parameters
    ----------
    key
        Signs the manifest and the checkpoint, under *origin* (default ``nbgov/<ledger id>``).
    seqs
        The events the bundle carries (default: all); the checkpoint covers the whole ledger.
    row_group_size
        Rows per row group of events.parquet.
    tables
        name -> (SQL over the ledger's views, seq column or None); default: ``models`` (a seq
        column) and ``actors`` (none).
    """
    ledger = Ledger(home)
    origin = origin or f"nbgov/{ledger.head().ledger_id}"
    size, root = ledger.merkle_root()
    directory.mkdir(parents=True)
    (directory / "tables").mkdir()
    (directory / "models").mkdir()

    events = ledger_events(home, range(1, size + 1) if seqs is None else [s for s in seqs if s <= size])
    write_table(events, directory / "events.parquet", row_group_size=row_group_size)
    proofs = []
    for seq in events.column("seq").to_pylist():
        proof_size, proof = ledger.inclusion_proof(seq, size)
        assert proof_size == size
        proofs.append([seq, [base64.b64encode(h).decode() for h in proof]])

    listed_tables = []
    for name, (sql, seq_column) in (tables or {"models": (MODEL_EVENTS_SQL, "seq"),
                                                "actors": (ACTORS_SQL, None)}).items():
        result = ledger.query_arrow(sql).table
        write_table(result, directory / "tables" / f"{name}.parquet")
        (directory / "tables" / f"{name}.sql").write_text(sql + "\n")
        listed_tables.append({
            "name": name, "path": f"tables/{name}.parquet",
            "sha256": sha256_file(directory / "tables" / f"{name}.parquet"), "rows": result.num_rows,
            "sql_path": f"tables/{name}.sql", "sql_sha256": sha256_file(directory / "tables" / f"{name}.sql"),
            "seq_column": seq_column})

    (directory / "report.html").write_text("<!doctype html><title>Evidence</title><h1>Evidence</h1>\n")
    (directory / "models" / "credit@1.html").write_text("<!doctype html><title>credit@1</title>\n")
    (directory / "checkpoint.note").write_text(sign_note(checkpoint_text(origin, size, root), origin, key))
    shutil.copyfile(VERIFIER_SOURCE, directory / "verify_bundle.py")

    bundle = Bundle(directory, origin, key)
    bundle.write_manifest({
        "format": "nbgov-evidence/1", "origin": origin, "ledger_id": ledger.head().ledger_id,
        "period": {"from": period[0], "to": period[1]}, "created_at": "2026-11-29T01:02:03.123456Z",
        "created_by": "ines",
        "checkpoint": {"path": "checkpoint.note", "size": size, "root": base64.b64encode(root).decode()},
        "verifier_keys": [bundle.vkey],
        "events": {"path": "events.parquet", "sha256": sha256_file(directory / "events.parquet"),
                   "rows": events.num_rows, "proofs": proofs},
        "tables": listed_tables,
        "files": [{"path": p, "sha256": sha256_file(directory / p)}
                  for p in ("report.html", "models/credit@1.html")],
    })
    return bundle


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "NBGOV_"))}


@pytest.fixture(scope="session")
def clean_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Python with only ``cryptography`` (and its dependencies) installed."""
    import cryptography

    venv = tmp_path_factory.mktemp("verifier-venv")
    made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, timeout=300)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if made.returncode or not python.exists():
        pytest.skip(f"cannot create a virtual environment for the standalone verifier: {made.stderr[-500:]}")
    for spec in (f"cryptography=={cryptography.__version__}", "cryptography"):
        installed = subprocess.run([str(python), "-m", "pip", "install", "--quiet", spec], capture_output=True,
                                   text=True, timeout=600, env=_clean_env())
        if installed.returncode == 0:
            break
    else:
        pytest.skip(f"cannot install cryptography into the verifier's virtual environment: {installed.stderr[-500:]}")
    for module, present in [("cryptography", True), ("pyarrow", False), ("duckdb", False), ("nbgov", False)]:
        probe = subprocess.run([str(python), "-c", f"import {module}"], capture_output=True, text=True,
                               cwd=venv, env=_clean_env())
        assert (probe.returncode == 0) == present, (module, probe.stderr)
    return python
