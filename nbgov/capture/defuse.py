"""The def-use analysis of one cell: which global names each statement reads, binds and changes.

A name is an input of a statement when its value is read; it is changed only by assignment,
augmented assignment, deletion, subscript/attribute assignment, or a call of a method known to
mutate (:data:`MUTATING_METHODS`, or ``inplace=True``), never by a read-only call (``mean``,
``head``, ``print``, plotting). Tuple and starred assignment map targets element-wise where the
right-hand side is a tuple or list display; otherwise every target takes the whole value.
Compound statements are flattened into the statements of their bodies, each also depending on
the names that control it (a loop's body twice, so a later statement can feed an earlier one).
Function and class definitions record the globals their bodies read: a call depends on those.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

__all__ = ["MUTATING_METHODS", "CellFlow", "StatementFlow", "analyze_cell"]


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
    statement's first and last line in the cell and ``top`` the ordinal of the top-level statement
    it belongs to (a compound statement is flattened into several flows). ``fit_target`` is the
    name a ``name = <estimator expression>.fit(...)`` statement binds the fitted estimator to;
    ``target`` the one name a plain ``name = ...`` statement binds.
    """

    uses: frozenset[str]
    defines: frozenset[str]
    mutates: frozenset[str] = frozenset()
    deps: Mapping[str, frozenset[str]] = field(default_factory=dict)
    conditional: bool = False
    functions: Mapping[str, frozenset[str]] = field(default_factory=dict)
    lines: tuple[int, int] = (0, 0)
    top: int = 0
    fit_target: str | None = None
    target: str | None = None

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
        """The ordinal of the top-level statement that holds *line* (see ``StatementFlow.top``),
        or None."""
        for statement in self.statements:
            first, last = statement.lines
            if first <= line <= last:
                return statement.top
        return None

    def statement(self, top: int) -> StatementFlow | None:
        """The flows of top-level statement *top* merged: what it reads, binds and fit-names."""
        flows = [s for s in self.statements if s.top == top]
        if not flows:
            return None
        return StatementFlow(frozenset().union(*(f.uses for f in flows)),
                             frozenset().union(*(f.defines for f in flows)), lines=flows[0].lines,
                             top=top, fit_target=next((f.fit_target for f in flows if f.fit_target), None),
                             target=next((f.target for f in flows if f.target), None))


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
    flow = _flow(names.uses, deps, names.mutates, names.functions, control, conditional, lines,
                 defines=names.defines)
    fit_name = _fit_target(node)
    single = _single_target(node)
    return dataclasses.replace(flow, fit_target=fit_name, target=single) if fit_name or single else flow


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
    for top, statement in enumerate(tree.body):
        flows += [dataclasses.replace(flow, top=top) for flow in _statements(statement, frozenset(), False)]
    return CellFlow(tuple(flows))


def _single_target(node: ast.stmt) -> str | None:
    """``name = ...``: the one name the statement binds."""
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id
    if isinstance(node, ast.AnnAssign) and node.value is not None and isinstance(node.target, ast.Name):
        return node.target.id
    return None


def _fit_target(node: ast.stmt) -> str | None:
    """``name = <expression>.fit(...)``: the name the fitted estimator is bound to."""
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target, value = node.targets[0], node.value
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        target, value = node.target, node.value
    else:
        return None
    if (isinstance(target, ast.Name) and isinstance(value, ast.Call)
            and isinstance(value.func, ast.Attribute) and value.func.attr == "fit"):
        return target.id
    return None
