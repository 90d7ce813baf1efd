"""Secrets never reach the ledger: not in cell sources, parameters, errors, spool or DuckDB file."""

from __future__ import annotations

from pathlib import Path

from nbgov.ledger.facade import Ledger

# Fabricated, but in the real formats (lengths, prefixes, alphabets).
SECRETS = {
    "aws_key_id": "AKIAIOSFODNN7EXAMPLQ",
    "aws_secret": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEYZ",
    "github": "ghp_8f3Kd92LmQpR7sTuVwXyZa1B2c3D4e5F6g7H",
    "openai": "sk-proj-Q8w3Lm5Nz2Xc7Vb9Rt4Yh6Jk1Pq0Ws3Ed5Rf",
    "stripe": "sk_live_51HgYt2LkMnOpQrStUvWxYz0123",
    "slack": "xoxb-2364812745-1746282930-q9WEr7TyUiOp8AsDfGhJkLzX",
    "google": "AIzaSyD3x9Kq7Lm2Np5Qr8St1Uv4Wx6Yz0AbCdE",
    "password": "Tr0ub4dor&3-horse",
    "db_password": "c0rrect-h0rse-battery",
    "bearer": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbmEiLCJyb2xlIjoiYWRtaW4ifQ.Zm9vYmFyYmF6cXV4cXV1eA",
    "api_param": "9f8e7d6c5b4a39281706f5e4d3c2b1a0",
}

CELLS = [
    f'password = "{SECRETS["password"]}"',
    f"import os\nos.environ['AWS_ACCESS_KEY_ID'] = '{SECRETS['aws_key_id']}'\n"
    f"aws_secret_access_key = '{SECRETS['aws_secret']}'",
    f"GITHUB_TOKEN = '{SECRETS['github']}'  # for the private data repo",
    f"client_config = {{'api_key': '{SECRETS['openai']}', 'model': 'gpt'}}",
    f"stripe_key = '{SECRETS['stripe']}'\nslack = '{SECRETS['slack']}'",
    f"headers = {{'Authorization': 'Bearer {SECRETS['bearer']}'}}",
    f"uri = 'postgresql://analyst:{SECRETS['db_password']}@db.internal:5432/loans'",
    f"key = '{SECRETS['google']}'",
    f"raise ValueError('login failed for {SECRETS['password']}')",
]


def _every_file(home: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file())


def test_no_secret_reaches_the_ledger(shell, tmp_path: Path) -> None:
    for cell in CELLS:
        shell.run_cell(cell)
    shell.run_cell(
        "import numpy as np, nbgov\nfrom sklearn.base import BaseEstimator, ClassifierMixin\n"
        "class RemoteModel(BaseEstimator, ClassifierMixin):\n"
        "    def __init__(self, api_key=None, alpha=1.0):\n"
        "        self.api_key, self.alpha = api_key, alpha\n"
        "    def fit(self, X, y):\n        self.classes_ = np.unique(y)\n        return self\n"
        f"remote = RemoteModel(api_key='{SECRETS['api_param']}', alpha=0.5).fit(np.zeros((4, 1)), [0, 1, 0, 1])\n"
        f"nbgov.log_params({{'token': '{SECRETS['github']}', 'endpoint': 'https://api.example.com'}})"
    )
    home = tmp_path / "ledger"
    ledger = Ledger(home)
    bodies = ledger.query("SELECT decode(body) AS b FROM event_log")["b"].str.cat(sep="\n")
    files = _every_file(home)
    assert "[REDACTED]" in bodies
    for name, secret in SECRETS.items():
        assert secret not in bodies, f"{name} is in an event body"
        assert secret.encode() not in files, f"{name} is in a ledger or spool file"
    # The redaction kept what an auditor needs: which cell did what, and the innocent values.
    cells = ledger.query("SELECT source, redactions FROM cells ORDER BY seq")
    assert cells["source"][0] == 'password = "[REDACTED]"'
    assert (cells["redactions"] >= 1).sum() >= len(CELLS) - 1
    model = ledger.query("SELECT params FROM models").iloc[0]["params"]
    assert '"alpha":0.5' in model and '"api_key":"[REDACTED]"' in model
    assert "https://api.example.com" in ledger.query("SELECT params FROM params")["params"][0]
