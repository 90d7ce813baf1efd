"""Review parameters: papermill's command-line forms and values, then nbgov's checks.

**Values are papermill's.** ``nbgov review run`` and ``nbgov schedule add`` take the parameter
options of the ``papermill`` command, and :func:`papermill_parameters` reads them with
papermill's own functions (``papermill.cli._resolve_type``, ``papermill.iorw.read_yaml_file`` and
its YAML loader), so one command line gives the notebook the same values under both:

* ``-p NAME VALUE``: ``True``/``False`` are booleans, ``None`` is None, text that ``int()``
  reads is an int (``007`` is 7, ``1_000`` is 1000), else text that ``float()`` reads is a float
  (``3.5``, ``1e3``, ``nan``, ``inf``), else the text itself (``true`` stays the text ``"true"``);
* ``-r NAME VALUE``: the text as given;
* ``-y YAML``, ``-f FILE`` (YAML or JSON), ``-b BASE64`` (base64 of YAML): a mapping read by
  PyYAML's safe loader without timestamps (dates stay text; YAML 1.1 reads ``yes``/``no``/
  ``on``/``off`` as booleans).

They merge in papermill's order, whatever their position on the command line: every ``-b``, then
every ``-f``, then every ``-y``, then every ``-p``, then every ``-r``, each overriding what came
before (so ``-r`` beats ``-p`` beats ``-y`` beats ``-f`` beats ``-b``; within one form the later
wins).

**Then nbgov checks** them against the notebook's cell tagged ``parameters``
(:func:`check_parameters`), and never converts a value: a name the cell does not define is
refused, and so is a value whose type does not match the parameter's. The parameter's type is its
annotation when papermill finds one (``x: float = 1``, ``x = 1  # type: float``), else the type of
its default's literal. What matches:

========================  ==========================================================
the parameter's type      values accepted
========================  ==========================================================
``int``                   an int (not a bool, not a float such as ``3.0``)
``float``                 a float or an int (not a bool)
``bool``                  a bool (``-p flag True``; ``-p flag true`` is text)
``str``                   text (``-p name 007`` is the int 7: use ``-r name 007``)
``list`` / ``dict``       a list / a dict (their items are not checked)
``Optional[T]``           ``T`` or None (``Union[...]`` and ``T | None`` likewise)
default ``None``, an      anything
expression, another
annotation
========================  ==========================================================

None is accepted only where the type says so (a ``None`` default, ``Optional``).
"""

from __future__ import annotations

import ast
import base64
import binascii
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbgov.errors import ReviewError

__all__ = [
    "Parameter",
    "check_parameters",
    "notebook_parameters",
    "papermill_parameters",
    "parameter_argv",
]


@dataclass(frozen=True)
class Parameter:
    """One parameter the notebook's ``parameters`` cell declares.

    ``kinds`` are the Python types a value may have (None: anything; see the module's table).
    """

    name: str
    type_name: str
    default: str
    help: str
    kinds: tuple[type, ...] | None = None

    def accepts(self, value: Any) -> bool:
        if self.kinds is None:
            return True
        if isinstance(value, bool):
            return bool in self.kinds
        return isinstance(value, self.kinds)


# -- what the notebook declares ------------------------------------------------------------------


def _read_notebook(path: Path) -> Any:
    import nbformat

    if not path.is_file():
        raise ReviewError(f"no notebook at {path}")
    try:
        return nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    except Exception as exc:  # nbformat raises several unrelated types for a bad file
        raise ReviewError(f"{path} is not a readable notebook ({type(exc).__name__}: {exc})") from None


def notebook_parameters(path: Path) -> dict[str, Parameter]:
    """The parameters declared by the notebook's cell tagged ``parameters`` (papermill's reading).

    Raises
    ------
    ReviewError
        No such notebook, not a notebook, or no ``parameters`` cell.
    """
    from papermill import inspect_notebook

    nb = _read_notebook(path)
    if not any("parameters" in cell.get("metadata", {}).get("tags", []) for cell in nb.cells):
        raise ReviewError(
            f"{path.name} has no cell tagged 'parameters'",
            hint="review notebooks are parameterised: tag the cell that sets the defaults 'parameters'")
    declared = {}
    for name, p in inspect_notebook(str(path)).items():
        annotated = p["inferred_type_name"] not in ("None", "")
        if annotated:
            type_name, kinds = p["inferred_type_name"], _annotation_kinds(p["inferred_type_name"])
        else:
            type_name, kinds = _default_kinds(p["default"])
        declared[name] = Parameter(name, type_name, p["default"], p["help"], kinds)
    return declared


_NONE = type(None)
_SIMPLE: dict[str, tuple[type, ...]] = {
    "int": (int,), "float": (float, int), "bool": (bool,), "str": (str,),
    "list": (list,), "List": (list,), "dict": (dict,), "Dict": (dict,), "NoneType": (_NONE,),
}


def _default_kinds(default: str) -> tuple[str, tuple[type, ...] | None]:
    """The type of the default's literal (``x = 1``: int); None or an expression: anything."""
    try:
        value = ast.literal_eval(default)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return "None", None
    for kind in (bool, int, float, str, list, dict):  # bool first: True is also an int
        if isinstance(value, kind):
            return kind.__name__, _SIMPLE[kind.__name__]
    return "None", None


def _annotation_kinds(annotation: str) -> tuple[type, ...] | None:
    """The types an annotation admits, or None (anything) for one nbgov does not interpret."""
    try:
        node = ast.parse(annotation.strip(), mode="eval").body
    except SyntaxError:
        return None
    return _kinds_of(node)


def _kinds_of(node: ast.expr) -> tuple[type, ...] | None:
    if isinstance(node, ast.Constant) and node.value is None:
        return (_NONE,)
    if isinstance(node, ast.Name):
        return _SIMPLE.get(node.id)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _union([node.left, node.right])
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        base = node.value.id
        inner = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
        if base in ("list", "List", "dict", "Dict"):
            return _SIMPLE[base]
        if base == "Optional" and len(inner) == 1:
            return _union([inner[0], ast.Constant(None)])
        if base == "Union":
            return _union(inner)
    return None


def _union(nodes: Iterable[ast.expr]) -> tuple[type, ...] | None:
    kinds: list[type] = []
    for node in nodes:
        found = _kinds_of(node)
        if found is None:
            return None
        kinds += [kind for kind in found if kind not in kinds]
    return tuple(kinds)


# -- papermill's command line --------------------------------------------------------------------


def _problem(exc: BaseException) -> str:
    """An exception's text as one line (a YAML error: its problem and where)."""
    problem, mark = getattr(exc, "problem", None), getattr(exc, "problem_mark", None)
    if problem:
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        return " ".join(f"{problem}{where}".split())
    return " ".join(str(exc).split()) or type(exc).__name__


def _merge(merged: dict[str, Any], loaded: Any, where: str) -> None:
    """``merged.update(loaded or {})``, as papermill does, with its errors as one line."""
    try:
        merged.update(loaded or {})
    except (TypeError, ValueError):
        raise ReviewError(f"{where}: parameters must be a YAML mapping (name: value), not "
                          f"{type(loaded).__name__}") from None


def papermill_parameters(
    *,
    typed: Sequence[tuple[str, str]] = (),
    raw: Sequence[tuple[str, str]] = (),
    yaml_texts: Sequence[str] = (),
    files: Sequence[str] = (),
    base64_texts: Sequence[str] = (),
) -> dict[str, Any]:
    """The parameters papermill's command line gives for ``-p`` (*typed*), ``-r`` (*raw*), ``-y``
    (*yaml_texts*), ``-f`` (*files*) and ``-b`` (*base64_texts*), each in command-line order.

    Merged as papermill merges them (see the module documentation).

    Raises
    ------
    ReviewError
        A ``-b`` that is not base64, YAML that does not parse, a file that cannot be read, or a
        document that is not a mapping (one line, naming the option).
    """
    import yaml  # type: ignore[import-untyped]
    from papermill.cli import _resolve_type
    from papermill.iorw import NoDatesSafeLoader, read_yaml_file

    merged: dict[str, Any] = {}
    for text in base64_texts:
        try:
            decoded = base64.b64decode(text)
        except (binascii.Error, ValueError) as exc:
            raise ReviewError(f"-b {_shorten(text)}: not base64 ({_problem(exc)})") from None
        _merge(merged, _load_yaml(yaml, decoded, NoDatesSafeLoader, f"-b {_shorten(text)}"),
               f"-b {_shorten(text)}")
    for name in files:
        try:
            loaded = read_yaml_file(name)
        except yaml.YAMLError as exc:
            raise ReviewError(f"-f {name}: not YAML ({_problem(exc)})") from None
        except OSError as exc:
            raise ReviewError(f"-f {name}: cannot be read ({exc.strerror or _problem(exc)})") from None
        _merge(merged, loaded, f"-f {name}")
    for text in yaml_texts:
        _merge(merged, _load_yaml(yaml, text, NoDatesSafeLoader, f"-y {_shorten(text)}"),
               f"-y {_shorten(text)}")
    for name, value in typed:
        merged[name] = _resolve_type(value)
    for name, value in raw:
        merged[name] = value
    return merged


def _load_yaml(yaml: Any, text: str | bytes, loader: Any, where: str) -> Any:
    try:
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        raise ReviewError(f"{where}: not YAML ({_problem(exc)})") from None


def _shorten(text: str, limit: int = 40) -> str:
    shown = repr(text)
    return shown if len(shown) <= limit else shown[:limit - 4] + "...'"


def parameter_argv(values: Mapping[str, Any]) -> list[str]:
    """Command-line arguments that give ``nbgov review run`` (or papermill) exactly *values*.

    One ``-y`` with the values as YAML (``yaml.safe_dump`` reads back identically with
    papermill's loader, text that looks like a number or a date included); none when empty.
    """
    if not values:
        return []
    import yaml

    return ["-y", yaml.safe_dump(dict(values), default_flow_style=True, allow_unicode=True,
                                 sort_keys=False, width=float("inf")).strip()]


# -- nbgov's checks ------------------------------------------------------------------------------


def check_parameters(declared: Mapping[str, Parameter], given: Mapping[str, Any]) -> dict[str, Any]:
    """Check *given* against the declared parameters; return them unchanged.

    Raises
    ------
    ReviewError
        An unknown name (naming the notebook's parameters), or a value of a type the parameter
        does not accept (see the module's table); one line each.
    """
    unknown = [name for name in given if name not in declared]
    if unknown:
        names = ", ".join(declared) or "none"
        raise ReviewError(f"unknown parameter(s) {', '.join(map(repr, unknown))}; the notebook's "
                          f"parameters: {names}")
    for name, value in given.items():
        parameter = declared[name]
        if not parameter.accepts(value):
            raise ReviewError(f"parameter {name!r} must be {parameter.type_name} (the notebook's "
                              f"default is {parameter.default}), not {_described(value)}"
                              f"{_papermill_note(parameter, value)}")
    return dict(given)


def _described(value: Any) -> str:
    if value is None:
        return "None"
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:56] + " ..."
    return f"{type(value).__name__} {shown}"


def _papermill_note(parameter: Parameter, value: Any) -> str:
    kinds = parameter.kinds or ()
    if bool in kinds and isinstance(value, str):
        return " (as in papermill, -p reads only True and False as booleans)"
    if str in kinds and (value is None or isinstance(value, (bool, int, float))):
        return " (as in papermill, -p reads numbers, True, False and None; -r NAME VALUE gives text)"
    return ""
