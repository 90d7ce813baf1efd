"""Running notebooks with papermill, recorded by nbgov.

The kernel is told which ledger to use (``NBGOV_HOME``) and which notebook it runs
(``NBGOV_NOTEBOOK``); the executed copy is kept under ``<home>/runs/``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbgov.errors import NbgovError

__all__ = ["NotebookRun", "execute_notebook"]


@dataclass(frozen=True)
class NotebookRun:
    """The outcome of one papermill run."""

    notebook: Path
    output: Path
    ok: bool
    error: str | None
    seconds: float


@contextlib.contextmanager
def environment_variables(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration (papermill starts kernels with this process's
    environment)."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def execute_notebook(
    notebook: Path,
    *,
    home: Path,
    cwd: Path,
    parameters: Mapping[str, Any] | None = None,
    timeout: float | None = 600,
    progress: bool = False,
    environment: Mapping[str, str] | None = None,
) -> NotebookRun:
    """Execute *notebook* in a fresh kernel, recording into the ledger at *home*.

    *environment* adds variables for the kernel (and the commands it runs).
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    notebook = notebook.resolve()
    if not notebook.is_file():
        raise NbgovError(f"no notebook at {notebook}")
    from nbgov.ledger.facade import Ledger
    from nbgov.settings import resolve_settings

    Ledger(settings=resolve_settings({"home": home})).ensure_home()
    runs = home / "runs"
    runs.mkdir(mode=0o700, exist_ok=True)
    output = runs / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{notebook.name}"
    cwd.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    error = None
    variables = {**(environment or {}), "NBGOV_HOME": str(home.resolve()), "NBGOV_NOTEBOOK": str(notebook)}
    with environment_variables(variables):
        try:
            papermill.execute_notebook(
                str(notebook), str(output), parameters=dict(parameters or {}), cwd=str(cwd),
                kernel_name="python3", progress_bar=progress, execution_timeout=timeout,
                log_output=False,
            )
        except PapermillExecutionError as exc:
            error = f"cell {exc.exec_count}: {exc.ename}: {exc.evalue}"
    return NotebookRun(notebook, output, error is None, error, time.monotonic() - started)
