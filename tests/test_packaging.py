"""The installed package: layout, entry points, cheap import, public names."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import nbgov


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True)


@pytest.mark.parametrize("name", ["magics", "widgets"])
def test_layout_folders_are_not_top_level_packages(name: str, tmp_path: Path) -> None:
    result = _python(f"import {name}", tmp_path)
    assert result.returncode != 0
    assert "ModuleNotFoundError" in result.stderr


@pytest.mark.parametrize("name", ["nbgov.magics", "nbgov.widgets"])
def test_subpackages_are_importable(name: str, tmp_path: Path) -> None:
    result = _python(f"import {name}; print({name}.__name__)", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == name


def test_import_is_cheap(tmp_path: Path) -> None:
    code = "import sys, nbgov; print(sorted(m for m in ('duckdb', 'pandas', 'pyarrow', 'IPython') if m in sys.modules))"
    result = _python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_console_script_and_module_entry_points(tmp_path: Path) -> None:
    script = shutil.which("nbgov")
    assert script is not None, "the nbgov console script is not installed"
    for command in ([script, "--version"], [sys.executable, "-m", "nbgov", "--version"]):
        result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"nbgov, version {nbgov.__version__}"


def test_public_names_resolve() -> None:
    for name in nbgov.__all__:
        assert getattr(nbgov, name) is not None, name
    with pytest.raises(AttributeError):
        nbgov.no_such_name  # noqa: B018


def test_duckdb_is_pinned_to_the_1_5_series() -> None:
    import duckdb

    assert duckdb.__version__.startswith("1.5."), duckdb.__version__


def test_extension_autoinstall_is_off(tmp_path: Path) -> None:
    from nbgov.ledger.facade import Ledger

    ledger = Ledger.init(tmp_path / "l")
    with ledger._store.read() as con:
        settings = dict(con.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN "
            "('autoinstall_known_extensions', 'autoload_known_extensions')").fetchall())
    assert settings == {"autoinstall_known_extensions": "false", "autoload_known_extensions": "false"}


def test_what_duckdb_needs_for_timestamps_is_a_dependency() -> None:
    # DuckDB hands TIMESTAMPTZ values to Python through pytz and does not declare it: nbgov must.
    from importlib.metadata import requires

    from packaging.requirements import Requirement

    declared = {Requirement(r).name for r in requires("nbgov") or [] if "extra ==" not in r}
    assert "pytz" in declared
    script = ("import duckdb; c = duckdb.connect(); c.execute(\"SET TimeZone = 'UTC'\"); "
              "print(c.execute(\"SELECT TIMESTAMPTZ '2026-01-02 03:04:05+00'\").fetchall()[0][0].isoformat())")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2026-01-02T03:04:05+00:00"
