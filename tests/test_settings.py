"""Settings precedence: argument > NBGOV_* > [tool.nbgov] > default; bad values name their source."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbgov.errors import ConfigError
from nbgov.settings import SETTINGS, resolve_settings


def _pyproject(directory: Path, body: str) -> Path:
    path = directory / "pyproject.toml"
    path.write_text(body)
    return path


def test_defaults(tmp_path: Path) -> None:
    s = resolve_settings(cwd=tmp_path, environ={})
    assert s.home == tmp_path / ".nbgov"
    assert s.ledger_path == tmp_path / ".nbgov" / "ledger.duckdb"
    assert s.durability == "flush"
    assert all(source == "default" for source in s.sources.values())


def test_precedence_argument_over_environment_over_pyproject(tmp_path: Path) -> None:
    project = tmp_path / "project"
    nested = project / "notebooks" / "deep"
    nested.mkdir(parents=True)
    _pyproject(project, '[tool.nbgov]\nhome = "governance"\nlock_timeout = 5\n')

    from_file = resolve_settings(cwd=nested, environ={})
    assert from_file.home == project / "governance"  # relative to the pyproject's directory
    assert from_file.lock_timeout == 5.0
    assert from_file.sources["home"].endswith("[tool.nbgov]")

    from_env = resolve_settings(cwd=nested, environ={"NBGOV_HOME": "/srv/ledger"})
    assert from_env.home == Path("/srv/ledger")
    assert from_env.sources["home"] == "environment NBGOV_HOME"
    assert from_env.lock_timeout == 5.0

    explicit = resolve_settings({"home": "/explicit"}, cwd=nested, environ={"NBGOV_HOME": "/srv/ledger"})
    assert explicit.home == Path("/explicit")
    assert explicit.sources["home"] == "argument"


def test_nearest_pyproject_without_nbgov_table_means_defaults(tmp_path: Path) -> None:
    _pyproject(tmp_path, '[tool.nbgov]\nhome = "outer"\n')
    inner = tmp_path / "inner"
    inner.mkdir()
    _pyproject(inner, '[project]\nname = "x"\n')
    assert resolve_settings(cwd=inner, environ={}).home == inner / ".nbgov"


@pytest.mark.parametrize(
    ("body", "key", "fragment"),
    [
        ('[tool.nbgov]\nlock_timeout = "soon"\n', "lock_timeout", "invalid value 'soon'"),
        ('[tool.nbgov]\ndurability = "maybe"\n', "durability", "expected one of flush, fsync"),
        ('[tool.nbgov]\nhomedir = "x"\n', "homedir", "unknown key tool.nbgov.homedir"),
        ('[tool.nbgov]\ningest_batch_events = 0\n', "ingest_batch_events", "positive integer"),
        ("[tool.nbgov\n", "tool.nbgov", "not valid TOML"),
    ],
)
def test_invalid_pyproject_names_file_and_key(tmp_path: Path, body: str, key: str, fragment: str) -> None:
    path = _pyproject(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        resolve_settings(cwd=tmp_path, environ={})
    assert info.value.key == key
    assert str(path) in info.value.message
    assert fragment in info.value.message


def test_invalid_environment_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_settings(cwd=tmp_path, environ={"NBGOV_LOCK_TIMEOUT": "-1"})
    assert "NBGOV_LOCK_TIMEOUT" in info.value.message


def test_unknown_explicit_setting() -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        resolve_settings({"colour": "blue"})


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for setting in SETTINGS:
        assert f"`{setting.env}`" in readme, setting.env
        assert f"`{setting.name}`" in readme, setting.name
