"""Lineage through a notebook: which data each name in the session came from.

Every name a cell binds to data becomes a *variable node* (``var:<session>:<n>:<name>``) whose
inputs are the variable nodes of the names its statement read and the datasets its value came
from; a model's inputs are the variable nodes of what ``fit`` received. Walking those edges
upstream from a model reaches exactly the files whose data flowed into it, across any number of
cells. (Cell executions have coarser edges of their own: the cells and datasets they used.)

Two sources of evidence, combined after every cell:

1. A static def-use analysis of each executed cell (:mod:`nbgov.capture.defuse`), statement by
   statement: each name a statement binds or changes in place takes the provenance of the names
   its new value came from (read-only calls change nothing; tuples map element-wise). A call of a
   function the notebook defined depends on that function's node and the globals it reads.
2. Object identity: an object a reader returned (``pd.read_csv``) or a fit consumed is registered
   with the nodes it came from; a name bound to that very object at the end of the cell gets
   exactly those nodes.
3. Reads pinned to statements: capture notes which top-level statement of the cell was running
   when a dataset was read; a name whose object no reader registered takes the reads of the
   statements that bound it. A read that could not be pinned (code run outside a notebook cell)
   may have gone into any such name of the cell: an over-approximation, never an
   under-approximation.

Limits, honestly: data that flows through something the analysis cannot see is not linked --
files read by code outside the patched readers (``open()``, a C library), names bound with
``globals()[...]``, ``exec``, star imports, or values passed between cells through mutable
containers without rebinding a name. Provenance is per session; a restarted kernel starts empty.
"""

from __future__ import annotations

import types
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nbgov.capture.defuse import MUTATING_METHODS, CellFlow, StatementFlow, analyze_cell

__all__ = [
    "MUTATING_METHODS",
    "Binding",
    "CellFlow",
    "ProvenanceTracker",
    "StatementFlow",
    "analyze_cell",
    "variable_node",
]


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
        for statement in flow.statements:
            statement_reads = pinned.get(statement.top, set())
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
