"""The IPython shell the notebook tests run cells in, built in one place.

Each test gets a fresh ``InteractiveShell`` of its own (never the process-wide singleton that
``get_ipython()`` returns), with its IPython directory (history, profile) and its nbgov ledger in the
test's temporary directory, and nbgov loaded with ``%load_ext nbgov`` unless the test loads it
itself. A shell still recording when the test ends is unloaded (``%unload_ext nbgov``), as a
notebook's kernel would be shut down.

* ``make_shell`` (conftest.py, per test): the factory, ``make_shell(home=..., env={...},
  load=True, raise_errors=False)``; settings go into the environment with the test's monkeypatch,
  so they hold for the whole test and are undone after it.
* ``shell`` (conftest.py, per test): ``make_shell()``, recording into ``tmp_path / "ledger"``.
* :func:`isolated_shells` for module-scoped fixtures (which the per-test fixtures cannot serve): the
  same factory inside an environment of its own (no NBGOV_* / JupyterHub settings, signing keys
  under the base directory), undone when the block ends.

With ``raise_errors=True`` a cell's error is raised by ``run_cell`` itself (as jupysql's test shell
does), for tests in which every cell must succeed: the failure then shows the cell's own exception.
By default ``run_cell`` returns the ``ExecutionResult`` as IPython does, for tests that check a
cell fails or what it prints.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import ExecutionResult, InteractiveShell
from traitlets import Bool

EXTENSION = "nbgov"


class NotebookShell(InteractiveShell):  # type: ignore[misc]
    """An IPython shell run cell by cell like a notebook's kernel, without a kernel."""

    raise_errors = Bool(False, help="run_cell re-raises the cell's error instead of returning it")

    def run_cell(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        result = super().run_cell(*args, **kwargs)
        if self.raise_errors:
            result.raise_error()
        return result

    @property
    def recording(self) -> bool:
        """Whether nbgov is loaded in this shell."""
        return EXTENSION in self.extension_manager.loaded


class ShellFactory:
    """Makes fresh shells under *base*, their settings applied with *patch*; :meth:`close` unloads
    nbgov from every shell still recording."""

    def __init__(self, base: Path, patch: pytest.MonkeyPatch) -> None:
        self.base = base
        self.patch = patch
        self.shells: list[NotebookShell] = []

    def __call__(self, *, home: Path | None = None, env: Mapping[str, str] | None = None, load: bool = True,
                 raise_errors: bool = False) -> NotebookShell:
        """A new shell recording into *home* (default ``<base>/ledger``) with the extra settings
        *env* (e.g. NBGOV_POLICY, NBGOV_ACTOR); nbgov loaded unless *load* is false."""
        self.patch.setenv("IPYTHONDIR", str(self.base / "ipython"))
        self.patch.setenv("NBGOV_HOME", str(home if home is not None else self.base / "ledger"))
        for name, value in (env or {}).items():
            self.patch.setenv(name, value)
        shell = NotebookShell()
        shell.colors = "nocolor"
        self.shells.append(shell)
        if load:
            loaded = shell.run_cell(f"%load_ext {EXTENSION}")
            assert loaded.success, (loaded.error_before_exec, loaded.error_in_exec)
        shell.raise_errors = raise_errors
        return shell

    def close(self) -> None:
        for shell in self.shells:
            if shell.recording:
                shell.raise_errors = False
                shell.run_cell(f"%unload_ext {EXTENSION}")
        self.shells.clear()


@contextmanager
def isolated_shells(base: Path) -> Iterator[ShellFactory]:
    """A :class:`ShellFactory` for a module-scoped fixture: no NBGOV_* / JupyterHub settings from
    outside, signing keys under *base*; every setting undone (and every shell unloaded) at the end."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("NBGOV_") or name == "JUPYTERHUB_USER":
                patch.delenv(name)
        patch.setenv("NBGOV_KEY_DIR", str(base / "keys"))
        factory = ShellFactory(base, patch)
        try:
            yield factory
        finally:
            factory.close()
