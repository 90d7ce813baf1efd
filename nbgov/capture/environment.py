"""Facts about where a recording session runs: notebook, kernel, packages, git state.

Everything here is read once, when a session starts; nothing runs per cell.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "GitState",
    "PackageSnapshot",
    "find_notebook",
    "git_state",
    "kernel_id_from_connection_file",
    "package_snapshot",
    "python_version",
]

_KERNEL_FILE = re.compile(r"kernel-(?P<id>[0-9a-fA-F-]{8,})\.json$")


def find_notebook(environ: Mapping[str, str], user_ns: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The notebook's path and how it was found, or (None, None).

    Looked for, in order: ``NBGOV_NOTEBOOK`` (set by nbgov when it runs a notebook under
    papermill), VS Code's ``__vsc_ipynb_file__``, Jupyter's ``JPY_SESSION_NAME``, and the input
    notebook of a ``papermill`` command that started this kernel.
    """
    candidates = (
        (environ.get("NBGOV_NOTEBOOK"), "NBGOV_NOTEBOOK"),
        (user_ns.get("__vsc_ipynb_file__"), "__vsc_ipynb_file__"),
        (environ.get("JPY_SESSION_NAME"), "JPY_SESSION_NAME"),
        (papermill_input(os.getppid()), "papermill"),
    )
    for value, source in candidates:
        if isinstance(value, str) and value:
            return str(Path(value).expanduser().absolute()) if _looks_like_path(value) else value, source
    return None, None


def notebook_cell_ids(path: str | None) -> dict[str, list[str]]:
    """Each code cell's source in the notebook file at *path* -> the ids of the cells with that
    source, in notebook order (empty when there is no readable notebook with cell ids).

    Jupyter frontends send the running cell's id with each execution; papermill (nbclient) does
    not, so a kernel it runs finds the id by the cell's source in the notebook it runs.
    """
    if not path or not path.endswith(".ipynb"):
        return {}
    try:
        import json

        with open(path, encoding="utf-8") as fh:
            cells = json.load(fh).get("cells", [])
    except (OSError, ValueError, AttributeError):
        return {}
    found: dict[str, list[str]] = {}
    for cell in cells if isinstance(cells, list) else []:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code" or not cell.get("id"):
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        found.setdefault(text, []).append(str(cell["id"]))
    return found


def papermill_input(pid: int) -> str | None:
    """The input notebook of the ``papermill`` command running as process *pid* (Linux /proc)."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None
    words = [a.decode(errors="replace") for a in args if a]
    if not any(os.path.basename(w) == "papermill" or w == "papermill" for w in words[:3]):
        return None
    notebooks = [w for w in words if w.endswith(".ipynb")]
    return os.path.join(cwd, notebooks[0]) if notebooks else None


def _looks_like_path(value: str) -> bool:
    return value.endswith(".ipynb") or os.sep in value


def kernel_id_from_connection_file(path: str | None) -> str | None:
    """The kernel id in a Jupyter connection file name (``kernel-<id>.json``)."""
    if not path:
        return None
    match = _KERNEL_FILE.search(os.path.basename(path))
    return match["id"] if match else None


@dataclass(frozen=True)
class PackageSnapshot:
    """Installed distributions as sorted ``name==version`` lines, and their SHA-256."""

    text: str
    sha256: str
    count: int


def package_snapshot() -> PackageSnapshot:
    lines = sorted(
        {f"{(d.metadata['Name'] or '?').lower()}=={d.version}" for d in metadata.distributions()}
    )
    text = "\n".join(lines) + "\n"
    return PackageSnapshot(text, hashlib.sha256(text.encode()).hexdigest(), len(lines))


@dataclass(frozen=True)
class GitState:
    root: str
    commit: str | None
    dirty: bool | None


def git_state(directory: Path) -> GitState | None:
    """The repository holding *directory*: HEAD commit and whether the work tree is dirty."""
    try:
        root = _git(directory, "rev-parse", "--show-toplevel")
    except (OSError, subprocess.SubprocessError):
        return None
    if root is None:
        return None
    try:
        commit = _git(directory, "rev-parse", "HEAD")
        status = _git(directory, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return GitState(root, None, None)
    return GitState(root, commit, None if status is None else bool(status))


def _git(directory: Path, *args: str) -> str | None:
    result = subprocess.run(
        ["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=10
    )
    return result.stdout.strip() if result.returncode == 0 else None


def python_version() -> str:
    return f"{platform.python_implementation()} {platform.python_version()}"
