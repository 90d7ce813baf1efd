"""Lineage through a notebook: which data each name in the session came from.

Every name a cell binds to data becomes a *variable node* (``var:<session>:<n>:<name>``) whose
inputs are the variable nodes of the names its statement read and the datasets its value came
from; a model's inputs are the variable nodes of what ``fit`` received. Walking those edges
upstream from a model reaches exactly the files whose data flowed into it, across any number of
cells. (Cell executions have coarser edges of their own: the cells and datasets they used.)

Two sources of evidence, combined after every cell:

1. A static def-use analysis of each executed cell (:func:`analyze_cell`), statement by statement:
   the global names a statement binds take the provenance of the names it reads. A method call
   on a name (``model.fit(X, y)``, ``df.dropna(inplace=True)``) and an assignment into it
   (``df["x"] = ...``) count as rebinding that name, since they may change it in place.
2. Object identity: an object a reader returned (``pd.read_csv``) or a fit consumed is registered
   with the nodes it came from; a name bound to that very object at the end of the cell gets
   exactly those nodes.

A name defined in a cell gets what its statement read; if its object is not registered it also
gets every dataset read during that cell (reads cannot be pinned to a statement): an
over-approximation, never an under-approximation.

Limits, honestly: data that flows through something the analysis cannot see is not linked --
files read by code outside the patched readers (``open()``, a C library), names bound with
``globals()[...]``, ``exec``, star imports, or values passed between cells through mutable
containers without rebinding a name. Provenance is per session; a restarted kernel starts empty.
"""

from __future__ import annotations

import ast
import types
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

__all__ = ["Binding", "CellFlow", "ProvenanceTracker", "StatementFlow", "analyze_cell", "variable_node"]


@dataclass(frozen=True)
class StatementFlow:
    """Global names one top-level statement reads and binds.

    ``mutates`` are the names in ``defines`` that are only changed in place (``df["x"] = ...``,
    ``model.fit(...)``), not rebound.
    """

    uses: frozenset[str]
    defines: frozenset[str]
    mutates: frozenset[str] = frozenset()


@dataclass(frozen=True)
class CellFlow:
    """The def-use facts of one cell."""

    statements: tuple[StatementFlow, ...]

    @cached_property
    def defines(self) -> frozenset[str]:
        return frozenset().union(*(s.defines for s in self.statements))

    @cached_property
    def sorted_defines(self) -> list[str]:
        return sorted(self.defines)

    @cached_property
    def sorted_uses(self) -> list[str]:
        return sorted(self.uses)

    @cached_property
    def uses(self) -> frozenset[str]:
        """Names read before the cell itself bound them (they come from earlier cells)."""
        seen: set[str] = set()
        outside: set[str] = set()
        for statement in self.statements:
            outside |= statement.uses - seen
            seen |= statement.defines
        return frozenset(outside)


class _Names(ast.NodeVisitor):
    """Collects the global names read and bound within one statement."""

    def __init__(self) -> None:
        self.uses: set[str] = set()
        self.defines: set[str] = set()
        self.mutates: set[str] = set()

    def generic_visit(self, node: ast.AST) -> None:
        # ast.NodeVisitor's own is slow (iter_fields, deprecated-node checks): this runs on every
        # cell, so walk the children directly.
        visit = self.visit
        for child in ast.iter_child_nodes(node):
            visit(child)

    def visit_Constant(self, node: ast.Constant) -> None:
        pass

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.uses.add(node.id)
        else:  # Store or Del
            self.defines.add(node.id)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self._mutation(node)
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        self._mutation(node)
        self.generic_visit(node)

    def _mutation(self, node: ast.Attribute | ast.Subscript) -> None:
        # df["x"] = ...  /  obj.attr = ...  change the object df / obj names.
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            root = _root_name(node)
            if root is not None:
                self.mutates.add(root)
                self.uses.add(root)

    def visit_Call(self, node: ast.Call) -> None:
        # name.method(...) may change name in place (fit, dropna(inplace=True), append, ...).
        if isinstance(node.func, ast.Attribute):
            root = _root_name(node.func)
            if root is not None:
                self.mutates.add(root)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        root = node.target.id if isinstance(node.target, ast.Name) else _root_name(node.target)
        if root is not None:  # total += x reads total too
            self.uses.add(root)
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.defines.add(alias.asname or alias.name.split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name != "*":
                self.defines.add(alias.asname or alias.name)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.defines.add(node.name)
        self._visit_body(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.defines.add(node.name)
        self._visit_body(node)

    def _visit_body(self, node: ast.AST) -> None:
        # A function's own parameters and locals are not globals; what it reads from outside is
        # what it depends on. Collect its names and drop what it binds locally.
        inner = _Names()
        for child in ast.iter_child_nodes(node):
            inner.visit(child)
        local = set(inner.defines)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            local |= {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
            local |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
        self.uses |= inner.uses - local

    def visit_Global(self, node: ast.Global) -> None:  # names declared global are bound here
        self.defines.update(node.names)

    def _comprehension(self, node: ast.AST) -> None:
        inner = _Names()
        inner.generic_visit(node)
        self.uses |= inner.uses - inner.defines

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _comprehension

    def visit_Lambda(self, node: ast.Lambda) -> None:
        inner = _Names()
        inner.visit(node.body)
        args = node.args
        params = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
        self.uses |= inner.uses - params


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def analyze_cell(tree: ast.Module) -> CellFlow:
    """Def-use facts of a parsed cell, statement by statement."""
    statements = []
    for statement in tree.body:
        names = _Names()
        names.visit(statement)
        mutated_only = names.mutates - names.defines
        statements.append(StatementFlow(
            frozenset(names.uses), frozenset(names.defines | mutated_only), frozenset(mutated_only)))
    return CellFlow(tuple(statements))


def _not_data(value: Any) -> bool:
    """Modules, classes and functions: code, not data (calling pd.read_csv does not change pd)."""
    return isinstance(value, (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType))


@dataclass
class _Registration:
    nodes: frozenset[str]
    ref: Any


@dataclass(frozen=True)
class Binding:
    """A name bound by a cell: its variable node and the nodes its value came from."""

    name: str
    node: str
    inputs: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "node": self.node, "inputs": list(self.inputs)}


def variable_node(cell_node: str, name: str) -> str:
    """The node of the value *name* was bound to by one cell execution (``var:<session>:<n>:<name>``)."""
    return f"var:{cell_node.removeprefix('cell:')}:{name}"


@dataclass
class ProvenanceTracker:
    """Per-session provenance at the level of names: each bound name is a variable node.

    ``names`` maps a name to the variable node of its current value; :meth:`record_cell` returns
    the cell's :class:`Binding` list, each with its direct inputs (variable nodes of the names its
    statement read, datasets its object came from), which the cell's event records. The
    transitive closure is left to SQL (``lineage_upstream``).
    """

    names: dict[str, str] = field(default_factory=dict)
    defined_by: dict[str, str] = field(default_factory=dict)
    _objects: dict[int, _Registration] = field(default_factory=dict)

    # -- objects --------------------------------------------------------------------------------

    def register(self, obj: object, nodes: Iterable[str]) -> None:
        """Remember that *obj* came from *nodes* (for as long as it lives)."""
        key = id(obj)

        def forget(_ref: object, key: int = key) -> None:
            self._objects.pop(key, None)

        try:
            ref: Any = weakref.ref(obj, forget)
        except TypeError:  # not weak-referenceable (a tuple, an int): identity would be unsafe
            return
        previous = self._objects.get(key)
        merged = frozenset(nodes) | (previous.nodes if previous and previous.ref() is obj else frozenset())
        self._objects[key] = _Registration(merged, ref)

    def nodes_of(self, obj: object) -> frozenset[str] | None:
        registration = self._objects.get(id(obj))
        if registration is None or registration.ref() is not obj:
            return None
        return registration.nodes

    # -- names ----------------------------------------------------------------------------------

    def upstream_cells(self, flow: CellFlow) -> list[str]:
        """Cell executions that last bound the names *flow* reads from outside the cell."""
        return sorted({self.defined_by[n] for n in flow.uses if n in self.defined_by})

    def variables(self, names: Iterable[str]) -> set[str]:
        """Current variable nodes of *names* (names bound to code, or unknown, have none)."""
        return {self.names[n] for n in names if n in self.names}

    def record_cell(
        self,
        flow: CellFlow,
        cell_node: str,
        reads: Iterable[str],
        namespace: Mapping[str, Any],
    ) -> list[Binding]:
        """Bind the names a cell defined to new variable nodes; return those bindings."""
        read_nodes = frozenset(reads)
        earlier = self.names
        bound: dict[str, str] = {}  # names this cell bound so far (no copy of the session's map)
        inputs: dict[str, set[str]] = {}
        for statement in flow.statements:
            came_from = {bound.get(n) or earlier[n] for n in statement.uses if n in bound or n in earlier}
            for name in statement.defines:
                node = variable_node(cell_node, name)
                inputs.setdefault(name, set()).update(came_from - {node})
                bound[name] = node
        bindings: list[Binding] = []
        for name in sorted(inputs):
            value = namespace.get(name, _MISSING)
            if value is _MISSING:  # deleted, or bound only in a branch not taken
                self.names.pop(name, None)
                self.defined_by.pop(name, None)
                continue
            if _not_data(value):  # modules, classes, functions: code, not data
                self.names.pop(name, None)
                continue
            exact = self.nodes_of(value)
            # A registered object says exactly which reads it holds; otherwise any read of this
            # cell may have gone into it.
            direct = inputs[name] | (exact if exact is not None else read_nodes)
            binding = Binding(name, variable_node(cell_node, name), tuple(sorted(direct)))
            bindings.append(binding)
            self.names[name] = binding.node
            self.defined_by[name] = cell_node
        return bindings


_MISSING = object()
