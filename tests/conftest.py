"""Shared fixtures: every test runs in its own directory with a clean nbgov environment; the IPython
shell notebook tests run cells in (``shell``, ``make_shell``); the order tests start in."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import settings

from support.bundle_helpers import clean_python  # noqa: F401  (a session fixture for every module)
from support.helpers import isolated_module_environment, run_cli

if TYPE_CHECKING:
    from support.ipython import NotebookShell, ShellFactory

# The PostgreSQL server fixtures (`postgres`, `team_database`) for the team backend's tests, and the
# capture corpus's totals printed at the end of a run (tests/test_corpus.py).
pytest_plugins = ["support.pg_server", "support.corpus_report"]

EXAMPLES = Path(__file__).parents[1] / "example_notebooks"

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


@pytest.fixture(scope="session")
def hmda_lineage_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Any]:
    """``example_notebooks/hmda_lineage.ipynb`` run once for the session, as a test would run it
    (papermill, a fresh kernel, nbgov loaded), into a ledger of its own: (ledger home, the
    notebook's working directory, the run). Only for tests that read what it recorded and write
    nothing; mark them ``xdist_group("hmda_lineage")`` so that one worker runs it, once."""
    from nbgov.reviews.execution import execute_notebook

    base = tmp_path_factory.mktemp("hmda-lineage")
    home, work = base / "ledger", base / "work-dir"
    with isolated_module_environment(base):
        run = execute_notebook(EXAMPLES / "hmda_lineage.ipynb", home=home, cwd=work)
    return home, work, run


@pytest.fixture
def make_shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ShellFactory]:
    """The one way tests build an IPython shell (support.ipython): ``make_shell(home=..., env={...},
    load=True, raise_errors=False)`` gives a fresh shell with its IPython directory and ledger
    (default ``tmp_path / "ledger"``) in this test's directory and nbgov loaded; every shell still
    recording at the end of the test is unloaded."""
    from support.ipython import ShellFactory

    factory = ShellFactory(tmp_path, monkeypatch)
    yield factory
    factory.close()


@pytest.fixture
def shell(make_shell: ShellFactory) -> NotebookShell:
    """A fresh IPython shell with nbgov loaded, recording into ``tmp_path / "ledger"``."""
    return make_shell()


# -- the order tests start in, and on which worker ------------------------------------------------


def _module_fixture_group(item: pytest.Item) -> str | None:
    """``module-fixtures:<file>`` when *item* uses a module-scoped fixture (built once per module
    and process: a ledger, a bundle, a recorded notebook), else None."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    for name in item.fixturenames:
        definitions = info.name2fixturedefs.get(name)
        if definitions and definitions[-1].scope == "module":
            return f"module-fixtures:{item.path.name}"
    return None


def _is_long(item: pytest.Item) -> bool:
    return item.get_closest_marker("slow") is not None or item.get_closest_marker("browser") is not None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The order the tests start in (under pytest-xdist, support.scheduling hands each worker the
    next test, or group, as it frees up):

    * the tests sharing a module-scoped fixture form an ``xdist_group``, so one worker builds it once;
    * the groups (each shares an expensive setup) and the long tests (marked ``slow`` or
      ``browser``) start first, so that no worker is left with one at the end while the other idles;
      the order is otherwise the collection's.
    """
    from support.scheduling import GROUPS_INPUT, group_of, write_groups

    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            group = _module_fixture_group(item)
            if group is not None:
                item.add_marker(pytest.mark.xdist_group(group))
    items.sort(key=lambda item: 0 if _is_long(item) or group_of(item) is not None else 1)
    target = getattr(config, "workerinput", {}).get(GROUPS_INPUT)
    if target:  # a pytest-xdist worker: tell the controller the groups
        write_groups(Path(target), items)


_GROUPS_FILE = pytest.StashKey[Path]()


def _groups_file(config: pytest.Config) -> Path:
    if _GROUPS_FILE not in config.stash:
        config.stash[_GROUPS_FILE] = Path(tempfile.mkdtemp(prefix="nbgov-xdist-")) / "groups.json"
    return config.stash[_GROUPS_FILE]


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist's controller, before starting a worker: where to write the groups."""
    from support.scheduling import GROUPS_INPUT

    node.workerinput[GROUPS_INPUT] = str(_groups_file(node.config))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Groups kept on one worker, tests handed out in collection order (support.scheduling); for
    ``-n`` (load) and ``--dist loadgroup``, which pytest 9.2 breaks; other --dist modes as asked."""
    if config.getvalue("dist") not in ("load", "loadgroup"):
        return None
    from support.scheduling import SharedSetupScheduling

    return SharedSetupScheduling(config, log, groups_file=_groups_file(config))


def pytest_unconfigure(config: pytest.Config) -> None:
    if _GROUPS_FILE in config.stash:
        shutil.rmtree(config.stash[_GROUPS_FILE].parent, ignore_errors=True)
