"""Shared fixtures: every test runs in its own directory with a clean nbgov environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from bundle_helpers import clean_python  # noqa: F401  (a session fixture for every module)
from hypothesis import settings

from helpers import run_cli

# The PostgreSQL server fixtures (`postgres`, `team_database`) for the team backend's tests, and the
# capture corpus's totals printed at the end of a run (tests/test_corpus.py).
pytest_plugins = ["pg_server", "corpus_report"]

# Property tests check results, never time: no per-example deadline (a busy CI machine would
# otherwise fail an example for being slow). A test's own @settings overrides only what it names.
settings.register_profile("nbgov", deadline=None)
settings.load_profile("nbgov")


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working directory and no NBGOV_* / JupyterHub settings leaking in."""
    for name in list(os.environ):
        if name.startswith("NBGOV_") or name in ("JUPYTERHUB_USER",):
            monkeypatch.delenv(name)
    # Signing keys are per user (~/.nbgov/keys by default): keep the tests' keys out of it.
    monkeypatch.setenv("NBGOV_KEY_DIR", str(tmp_path / "keys"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A ledger directory path that does not exist yet."""
    return tmp_path / "ledger"


@pytest.fixture
def cli():
    return run_cli
