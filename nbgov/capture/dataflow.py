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
import dataclasses
import types
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

__all__ = [
    "MUTATING_METHODS",
    "Binding",
    "CellFlow",
    "ProvenanceTracker",
    "StatementFlow",
    "analyze_cell",
    "variable_node",
]


#: Methods that change the object they are called on (besides any call with ``inplace=True``):
#: the list, dict and set mutators, numpy's in-place array methods, pandas' in-place ``insert`` /
#: ``pop`` / ``update``, and estimators' ``fit`` family. Every other method call only reads.
MUTATING_METHODS = frozenset({
    "append", "extend", "insert", "remove", "pop", "clear", "sort", "reverse",  # list
    "update", "setdefault", "popitem",  # dict (and DataFrame.update)
    "add", "discard", "intersection_update", "difference_update", "symmetric_difference_update",
    "fill", "resize", "put", "itemset", "setfield", "partition", "setflags",  # numpy arrays
    "fit", "partial_fit", "fit_transform", "fit_predict", "fit_resample", "set_params",
    "set_output", "set_fit_request",  # estimators
})


@dataclass(frozen=True)
class StatementFlow:
    """Global names one top-level statement reads and binds.

    ``deps`` maps each name in ``defines`` to the names its new value came from: element-wise for
    ``a, b = x, y``, the whole right-hand side otherwise, and for a name changed in place
    (``df["x"] = ...``, ``model.fit(X, y)``, ``rows.append(r)``) its old value plus what the
    change read. ``mutates`` are the names only changed in place, not rebound. ``conditional``
    statements (inside a branch or loop) may or may not have run: what they bind adds to a name's
    sources instead of replacing them. ``functions`` are the functions (and classes) the statement
    defines, with the globals their bodies read (a call depends on those). ``lines`` is the
    statement's first and last line in the cell.
    """

    uses: frozenset[str]
    defines: frozenset[str]
    mutates: frozenset[str] = frozenset()
    deps: Mapping[str, frozenset[str]] = field(default_factory=dict)
    conditional: bool = False
    functions: Mapping[str, frozenset[str]] = field(default_factory=dict)
    lines: tuple[int, int] = (0, 0)

    def sources(self, name: str) -> frozenset[str]:
        return self.deps.get(name, self.uses)


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

    def statement_at(self, line: int) -> int | None:
        """The index of the top-level statement that holds *line* (its first statement's index
        when a compound statement was flattened into several), or None."""
        for index, statement in enumerate(self.statements):
            first, last = statement.lines
            if first <= line <= last:
                return index
        return None


class _Names(ast.NodeVisitor):
    """Collects the global names read and bound within one expression or statement."""

    def __init__(self) -> None:
        self.uses: set[str] = set()
        self.defines: set[str] = set()
        #: name changed in place -> the names the change read
        self.mutates: dict[str, set[str]] = {}
        self.functions: dict[str, frozenset[str]] = {}

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
        self._stored_into(node)
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        self._stored_into(node)
        self.generic_visit(node)

    def _stored_into(self, node: ast.Attribute | ast.Subscript) -> None:
        # df["x"] = ...  /  obj.attr = ...  /  del df["x"]  change the object df / obj names.
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            root = _root_name(node)
            if root is not None:
                self.mutates.setdefault(root, set())
                self.uses.add(root)

    def visit_Call(self, node: ast.Call) -> None:
        # name.method(...) changes name only for a known mutator or inplace=True.
        if isinstance(node.func, ast.Attribute) and _mutates(node):
            root = _root_name(node.func)
            if root is not None:
                inner = _Names()
                inner.generic_visit(node)
                self.mutates.setdefault(root, set()).update(inner.uses)
        self.generic_visit(node)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.defines.add(node.target.id)
        self.visit(node.value)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.defines.add(alias.asname or alias.name.split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name != "*":
                self.defines.add(alias.asname or alias.name)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.defines.add(node.name)
        for default in (*node.args.defaults, *node.args.kw_defaults, *node.decorator_list):
            if default is not None:
                self.visit(default)
        self.functions[node.name] = self._body_globals(node)
        self.uses |= self.functions[node.name]  # what the definition captures from the notebook

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.defines.add(node.name)
        for base in (*node.bases, *node.decorator_list):
            self.visit(base)
        self.functions[node.name] = self._body_globals(node)
        self.uses |= self.functions[node.name]

    def _body_globals(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> frozenset[str]:
        # A function's own parameters and locals are not globals; what it reads from outside is
        # what a call of it depends on.
        inner = _Names()
        for child in node.body:
            inner.visit(child)
        local = set(inner.defines)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            local |= {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
            local |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
        found = inner.uses - local
        for nested in inner.functions.values():
            found |= nested - local
        return frozenset(found)

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


def _mutates(call: ast.Call) -> bool:
    assert isinstance(call.func, ast.Attribute)
    if call.func.attr in MUTATING_METHODS:
        return True
    return any(k.arg == "inplace" and isinstance(k.value, ast.Constant) and k.value.value is True
               for k in call.keywords)


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _names(node: ast.AST | None) -> _Names:
    found = _Names()
    if node is not None:
        found.visit(node)
    return found


def _target_deps(target: ast.expr, value: ast.expr | None, value_uses: frozenset[str],
                 deps: dict[str, set[str]]) -> None:
    """What each name in *target* takes from *value* (element-wise where both are displays)."""
    if isinstance(target, ast.Name):
        deps.setdefault(target.id, set()).update(value_uses)
    elif isinstance(target, ast.Starred):
        _target_deps(target.value, value, value_uses, deps)
    elif isinstance(target, (ast.Tuple, ast.List)):
        parts = _split_display(target.elts, value)
        if parts is None:
            for element in target.elts:
                _target_deps(element, None, value_uses, deps)
        else:
            for element, values in parts:
                uses = frozenset().union(*(frozenset(_names(v).uses) for v in values))
                _target_deps(element, values[0] if len(values) == 1 else None, uses, deps)
    else:  # x[i] = ... / x.a = ...: x changes in place, from itself, the index and the value
        root = _root_name(target)
        if root is not None:
            deps.setdefault(root, {root}).update(value_uses | _names(target).uses)


def _split_display(targets: list[ast.expr], value: ast.expr | None
                   ) -> list[tuple[ast.expr, list[ast.expr]]] | None:
    """Pair each target with the value elements it receives, when *value* is a tuple or list
    display without starred elements (None otherwise: every target takes the whole value)."""
    if not isinstance(value, (ast.Tuple, ast.List)) or any(isinstance(v, ast.Starred) for v in value.elts):
        return None
    values = value.elts
    starred = [i for i, t in enumerate(targets) if isinstance(t, ast.Starred)]
    if not starred:
        return list(zip(targets, [[v] for v in values])) if len(targets) == len(values) else None
    k = starred[0]
    after = len(targets) - k - 1
    if len(values) < len(targets) - 1:
        return None
    pairs = [(t, [v]) for t, v in zip(targets[:k], values[:k])]
    pairs.append((targets[k], values[k:len(values) - after] or [value]))
    pairs += [(t, [v]) for t, v in zip(targets[k + 1:], values[len(values) - after:])]
    return pairs


def _statements(node: ast.stmt, control: frozenset[str], conditional: bool) -> list[StatementFlow]:
    """The flows of one statement: one, or several for a compound statement (its body flattened,
    each nested statement also depending on the names that control it)."""
    lines = (node.lineno, getattr(node, "end_lineno", None) or node.lineno)
    if isinstance(node, (ast.If, ast.While)):
        test = frozenset(_names(node.test).uses)
        body = [*node.body, *node.orelse]
        repeat = 2 if isinstance(node, ast.While) else 1
        return _block(body * repeat, control | test, True, lines, head=test)
    if isinstance(node, (ast.For, ast.AsyncFor)):
        source = _names(node.iter)
        head = frozenset(source.uses)
        deps: dict[str, set[str]] = {}
        _target_deps(node.target, None, head, deps)
        # Twice: a later statement of the body can feed an earlier one on the next pass.
        loop = _flow(set(head), deps, {}, {}, control, True, lines)
        return [loop, *_block([*node.body, *node.body, *node.orelse], control | head, True, lines)]
    if isinstance(node, (ast.With, ast.AsyncWith)):
        head_uses: set[str] = set()
        deps = {}
        for item in node.items:
            context = frozenset(_names(item.context_expr).uses)
            head_uses |= context
            if item.optional_vars is not None:
                _target_deps(item.optional_vars, item.context_expr, context, deps)
        head_flow = _flow(head_uses, deps, {}, {}, control, conditional, lines)
        return [head_flow, *_block(node.body, control | frozenset(head_uses), conditional, lines)]
    if isinstance(node, (ast.Try, ast.TryStar)):
        handlers = [h for handler in node.handlers for h in handler.body]
        return _block([*node.body, *handlers, *node.orelse, *node.finalbody], control, True, lines)
    if isinstance(node, ast.Match):
        subject = frozenset(_names(node.subject).uses)
        return _block([s for case in node.cases for s in case.body], control | subject, True, lines,
                      head=subject)
    return [_simple(node, control, conditional, lines)]


def _block(body: list[ast.stmt], control: frozenset[str], conditional: bool, lines: tuple[int, int],
           head: frozenset[str] = frozenset()) -> list[StatementFlow]:
    flows = [_flow(set(head), {}, {}, {}, control, conditional, lines)] if head else []
    for statement in body:
        flows += [dataclasses.replace(f, lines=lines) for f in _statements(statement, control, conditional)]
    return flows


def _simple(node: ast.stmt, control: frozenset[str], conditional: bool,
            lines: tuple[int, int]) -> StatementFlow:
    names = _names(node)
    deps: dict[str, set[str]] = {}
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        value = node.value
        value_uses = frozenset(_names(value).uses)
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if value is not None:
            for target in targets:
                _target_deps(target, value, value_uses, deps)
    elif isinstance(node, ast.AugAssign):  # total += x reads total too
        root = node.target.id if isinstance(node.target, ast.Name) else _root_name(node.target)
        if root is not None:
            names.uses.add(root)
            deps[root] = {root} | set(_names(node.value).uses) | (
                set() if isinstance(node.target, ast.Name) else set(_names(node.target).uses))
    for root, read in names.mutates.items():
        deps.setdefault(root, {root}).update(read | {root})
    return _flow(names.uses, deps, names.mutates, names.functions, control, conditional, lines,
                 defines=names.defines)


def _flow(uses: set[str], deps: dict[str, set[str]], mutates: Mapping[str, set[str]],
          functions: Mapping[str, frozenset[str]], control: frozenset[str], conditional: bool,
          lines: tuple[int, int], defines: set[str] | None = None) -> StatementFlow:
    defined = set(defines or ()) | set(deps) | set(mutates)
    uses_all = frozenset(uses | control)
    full = {name: frozenset(deps.get(name, uses) | control) for name in defined}
    for name in functions:  # a definition takes nothing from data; a call takes its globals
        full[name] = frozenset(control)
    only_mutated = frozenset(mutates) - (set(defines or ()) - set(mutates))
    return StatementFlow(uses_all, frozenset(defined), only_mutated, full, conditional,
                         dict(functions), lines)


def analyze_cell(tree: ast.Module) -> CellFlow:
    """Def-use facts of a parsed cell, statement by statement (compound statements flattened)."""
    flows: list[StatementFlow] = []
    for statement in tree.body:
        flows += _statements(statement, frozenset(), False)
    return CellFlow(tuple(flows))


def _not_data(value: Any) -> bool:
    """Modules, classes and functions: code, not data (calling pd.read_csv does not change pd)."""
    return isinstance(value, (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType))


@dataclass
class _Registration:
    nodes: frozenset[str]
    ref: Any


@dataclass(frozen=True)
class Binding:
    """A name bound by a cell: its variable node, the nodes its value came from, and its kind
    (``value``, or ``function`` for a function or class the notebook defined)."""

    name: str
    node: str
    inputs: tuple[str, ...]
    kind: str = "value"

    def as_dict(self) -> dict[str, Any]:
        found = {"name": self.name, "node": self.node, "inputs": list(self.inputs)}
        if self.kind != "value":
            found["kind"] = self.kind
        return found


def variable_node(cell_node: str, name: str) -> str:
    """The node of the value *name* was bound to by one cell execution (``var:<session>:<n>:<name>``)."""
    return f"var:{cell_node.removeprefix('cell:')}:{name}"


#: A dataset read during a cell: its node, and the index of the top-level statement (of the
#: cell's flow) that was running, or None when that could not be told.
Read = tuple[str, "int | None"]


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
    #: functions (and classes) the notebook defined -> the globals their bodies read
    functions: dict[str, frozenset[str]] = field(default_factory=dict)
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
        """Cell executions that last bound the names *flow* reads from outside the cell (the
        cells that defined the functions it calls included)."""
        return sorted({self.defined_by[n] for n in self._expand(flow.uses) if n in self.defined_by})

    def variables(self, names: Iterable[str]) -> set[str]:
        """Current variable nodes of *names* (and of the globals the functions among them read)."""
        return {self.names[n] for n in self._expand(names) if n in self.names}

    def _expand(self, names: Iterable[str], functions: Mapping[str, frozenset[str]] | None = None
                ) -> set[str]:
        """*names* plus, for each function among them, the globals it reads (transitively)."""
        known = self.functions if functions is None else functions
        found, pending = set(), list(names)
        while pending:
            name = pending.pop()
            if name in found:
                continue
            found.add(name)
            pending.extend(known.get(name, ()))
        return found

    def record_cell(
        self,
        flow: CellFlow,
        cell_node: str,
        reads: Iterable[str | Read],
        namespace: Mapping[str, Any],
    ) -> list[Binding]:
        """Bind the names a cell defined to new variable nodes; return those bindings.

        *reads* are the datasets the cell read, each pinned to the statement that read it where
        known (``(node, index)``); a read that could not be pinned may have gone into any name the
        cell bound to an object no reader registered.
        """
        pinned: dict[int, set[str]] = {}
        loose: set[str] = set()
        for read in reads:
            node, index = (read, None) if isinstance(read, str) else read
            if index is None:
                loose.add(node)
            else:
                pinned.setdefault(index, set()).add(node)
        functions = dict(self.functions)
        for statement in flow.statements:
            functions.update(statement.functions)
        earlier = self.names
        sources: dict[str, set[str]] = {}  # names bound so far in this cell -> what they came from
        data: dict[str, set[str]] = {}  # ... and the datasets their statements read
        for index, statement in enumerate(flow.statements):
            statement_reads = pinned.get(index, set())
            for name in statement.defines:
                came_from: set[str] = set()
                read_data: set[str] = set()
                for used in self._expand(statement.sources(name), functions):
                    if used in sources:
                        came_from |= sources[used]
                        read_data |= data[used]
                    elif used in earlier:
                        came_from.add(earlier[used])
                if name in functions and name in statement.functions:
                    came_from, read_data = set(), set()
                keep = statement.conditional or name in statement.mutates or name in statement.sources(name)
                if keep and name in sources:
                    sources[name] |= came_from
                    data[name] |= read_data | statement_reads
                else:
                    sources[name] = came_from
                    data[name] = read_data | statement_reads
        return self._bind(sources, data, loose, functions, cell_node, namespace)

    def _bind(self, sources: dict[str, set[str]], data: dict[str, set[str]], loose: set[str],
              functions: dict[str, frozenset[str]], cell_node: str,
              namespace: Mapping[str, Any]) -> list[Binding]:
        bindings: list[Binding] = []
        for name in sorted(sources):
            value = namespace.get(name, _MISSING)
            node = variable_node(cell_node, name)
            if value is _MISSING:  # deleted, or bound only in a branch not taken
                self.names.pop(name, None)
                self.defined_by.pop(name, None)
                self.functions.pop(name, None)
                continue
            if name in functions and isinstance(value, (type, types.FunctionType)):
                # A function or class the notebook defined: a node of its own, which the values
                # computed by calling it depend on (with the globals it reads).
                self.functions[name] = functions[name]
                binding = Binding(name, node, tuple(sorted(sources[name] - {node})), "function")
            elif _not_data(value):  # modules, imported classes and functions: code, not data
                self.names.pop(name, None)
                self.functions.pop(name, None)
                continue
            else:
                self.functions.pop(name, None)
                exact = self.nodes_of(value)
                # A registered object says exactly which reads it holds; otherwise the reads of
                # the statements that bound it (and any read that could not be pinned).
                came = exact if exact is not None else data[name] | loose
                binding = Binding(name, node, tuple(sorted((sources[name] | came) - {node})))
            bindings.append(binding)
            self.names[name] = binding.node
            self.defined_by[name] = cell_node
        return bindings


_MISSING = object()
