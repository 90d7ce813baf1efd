"""Helpers shared by the tests (tests/ is on sys.path through pytest's pythonpath setting)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

WORKERS = Path(__file__).parent / "workers"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBGOV_") and k != "JUPYTERHUB_USER"}
    env.update(extra)
    return env


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the installed ``nbgov`` command as a user would."""
    full_env = clean_env(**(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "nbgov", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
