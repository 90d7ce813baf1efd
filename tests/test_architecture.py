"""The house keeps its shape: layers checked by import-linter, no import cycles (function-level
imports included), one exception tree exported from ``nbgov``, a pinned public API, short modules."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

import nbgov
from nbgov import errors

ROOT = Path(__file__).parents[1]
# The standalone verifier shipped inside evidence bundles is one file by design (it must run with
# nothing but Python and cryptography).
LONG_BY_DESIGN = {"nbgov/evidence/verifier.py"}
MAX_LINES = 550


def _installed_layout(base: Path) -> Path:
    """The package laid out as pip installs it (magics/ and widgets/ inside nbgov/), with the
    project's import-linter configuration beside it."""
    tree = base / "layout"
    shutil.copytree(ROOT / "nbgov", tree / "nbgov", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "magics", tree / "nbgov" / "magics", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "widgets", tree / "nbgov" / "widgets", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("lint-imports")
    assert tool is not None, "import-linter is not installed (pip install -e '.[test]')"
    return subprocess.run([tool, "--no-cache"], cwd=tree, capture_output=True, text=True,
                          env={"PATH": str(Path(sys.executable).parent), "PYTHONPATH": str(tree)},
                          timeout=300)


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _installed_layout(tmp_path_factory.mktemp("arch"))


def test_import_contracts_hold(layout: Path) -> None:
    result = _lint_imports(layout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("module", "added", "contract"),
    [
        # governance may not import capture (they are independent core packages) ...
        ("nbgov/governance/checks.py", "import nbgov.capture.recorder\n", "layers"),
        # ... nor may the ledger import anything above it, even inside a function ...
        ("nbgov/ledger/spool.py", "def _late():\n    from nbgov.cli import main\n", "layers"),
        # ... and the core never imports Jupyter.
        ("nbgov/render/charts.py", "import IPython\n", "core never imports IPython"),
    ],
)
def test_a_forbidden_import_breaks_a_contract(tmp_path: Path, module: str, added: str, contract: str) -> None:
    tree = _installed_layout(tmp_path)
    path = tree / module
    path.write_text(path.read_text() + "\n\n" + added)
    result = _lint_imports(tree)
    assert result.returncode != 0, result.stdout
    assert "1 broken" in result.stdout and contract in result.stdout.replace("\n", " ")


# -- no import cycles, counting imports inside functions and under TYPE_CHECKING --------------------


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[0] in ("magics", "widgets"):
        parts.insert(0, "nbgov")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _import_graph() -> dict[str, set[str]]:
    files = [p for base in ("nbgov", "magics", "widgets") for p in (ROOT / base).rglob("*.py")]
    modules = {_module_name(p): p for p in files}

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str | None] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets.update(known(a.name) for a in node.names if a.name.startswith("nbgov"))
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("nbgov"):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    targets.add(full if full in modules else known(node.module))
        graph[name] = {t for t in targets if t is not None and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles_even_inside_functions() -> None:
    assert _cycles(_import_graph()) == []


def test_the_cycle_check_finds_a_cycle_hidden_in_a_function() -> None:
    graph = _import_graph()
    graph["nbgov.ledger.spool"].add("nbgov.ledger.facade")  # as a function-level import would
    assert ["nbgov.ledger.facade", "nbgov.ledger.spool"] in [
        [m for m in cycle if m in ("nbgov.ledger.facade", "nbgov.ledger.spool")] for cycle in _cycles(graph)]


# -- one exception tree, a pinned public API ----------------------------------------------------------

PUBLIC_API = [
    "AccessError", "AlertConfigError", "AlertError", "ApprovalRefused", "CheckFailed", "ConfigError",
    "CronError", "DeliveryError", "DescriptionError", "EvaluationError", "EventError", "EvidenceError",
    "ExportError", "FileProblem", "GovernanceError", "IngestError", "IntegrityError", "InvalidPayload",
    "Ledger", "LedgerAccessError", "LedgerCorrupt", "LedgerError", "LedgerLocked", "LedgerUnavailable",
    "NbgovError", "NbgovWarning", "NotALedger", "NotAnExtension", "NoteError", "ParquetLayoutError",
    "PermissionDenied", "PolicyBreach", "PolicyError", "ProofError", "ProofFileError", "QueryError",
    "ReviewError", "RiskError", "ScheduleError", "SchemaTooNew", "Settings", "SigningKeyError",
    "SpoolError", "TeamBackendMissing", "UnknownEventType", "UnknownModel", "VendorError",
    "WriteRefused", "__version__", "approve", "check", "describe_model", "drift", "events", "fairness",
    "load_ipython_extension", "log_metrics", "log_params", "reject", "request_approval",
    "resolve_settings", "unload_ipython_extension", "version_of", "whoami",
]


def test_the_public_api_is_pinned_and_every_name_resolves() -> None:
    assert sorted(nbgov.__all__) == sorted(PUBLIC_API)
    for name in nbgov.__all__:
        assert getattr(nbgov, name) is not None, name


def _every_module() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages(nbgov.__path__, "nbgov.")
             if m.name not in ("nbgov.__main__",)]
    return names + ["nbgov.magics", "nbgov.magics.commands", "nbgov.magics.session",
                    "nbgov.widgets", "nbgov.widgets.panel", "nbgov.widgets.render"]


def test_every_nbgov_error_lives_in_the_one_tree_and_is_exported() -> None:
    for name in _every_module():
        importlib.import_module(name)
    pending, seen = [errors.NbgovError], set()
    while pending:
        cls = pending.pop()
        seen.add(cls)
        pending.extend(cls.__subclasses__())
    assert {cls.__module__ for cls in seen} == {"nbgov.errors"}
    public = {cls.__name__ for cls in seen} | {"NbgovWarning"}
    assert public == set(errors.__all__)
    assert all(getattr(nbgov, name) is getattr(errors, name) for name in errors.__all__)
    # The tree drawn in the docstring names every class.
    drawn = set(inspect.getdoc(errors).split("::", 1)[1].split("Each error", 1)[0].split())
    assert public - {"NbgovWarning"} <= drawn


def test_the_package_ships_its_types() -> None:
    assert resources.files("nbgov").joinpath("py.typed").is_file()


def test_modules_stay_short() -> None:
    long = {}
    for base in ("nbgov", "magics", "widgets"):
        for path in (ROOT / base).rglob("*.py"):
            relative = str(path.relative_to(ROOT))
            lines = len(path.read_text().splitlines())
            if lines > MAX_LINES and relative not in LONG_BY_DESIGN:
                long[relative] = lines
    assert long == {}, "split these along a seam a reader can name"
