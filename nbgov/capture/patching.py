"""Reversible patches on library objects, including modules not imported yet.

:class:`Patches` replaces attributes (module functions, class methods) with wrappers and undoes
every replacement in reverse order. :meth:`Patches.when_imported` runs a callback on a module now
if it is imported, or right after it is imported later (a ``sys.meta_path`` finder that wraps the
module's loader), so a library imported in the same cell that uses it is still captured.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any

__all__ = ["Patches", "called_by_nbgov", "called_by_user", "calling", "nested", "reporting"]

_state = threading.local()


@functools.cache
def _library_paths() -> tuple[str, ...]:
    """Where library code lives: the standard library, installed packages, and nbgov itself."""
    import site
    import sysconfig
    from pathlib import Path

    paths = {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths |= set(getattr(site, "getsitepackages", lambda: [])())
    user_site = getattr(site, "getusersitepackages", lambda: None)()
    if user_site:
        paths.add(user_site)
    paths.add(str(Path(__file__).resolve().parents[1]))  # nbgov
    return tuple(sorted({str(Path(p).resolve()) + "/" for p in paths if p} | {p + "/" for p in paths if p}))


#: Modules that only forward a call (a descriptor's bound method, a decorator's wrapper): the
#: caller that counts is the one before them.
_FORWARDERS = ("/functools.py", "/sklearn/utils/_available_if.py", "/sklearn/utils/_set_output.py")


def called_by_user(depth: int = 1) -> bool:
    """True when the frame *depth* levels above the caller runs the user's code: a notebook
    cell, a script, a module of the user's own; False for the standard library, an installed
    package (scikit-learn fitting a cross-validation fold, a metric encoding its labels) or nbgov.
    """
    frame = sys._getframe(depth + 1)
    while frame is not None and frame.f_code.co_filename.endswith(_FORWARDERS):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return False
    filename = frame.f_code.co_filename
    if filename.startswith("<"):
        return not filename.startswith("<frozen")  # a cell ("<ipython-input-...>"), exec'd text
    return not filename.startswith(_library_paths())


@functools.cache
def _own_path() -> str:
    from pathlib import Path

    return str(Path(__file__).resolve().parents[1]) + "/"


def called_by_nbgov(depth: int = 1) -> bool:
    """True when the frame *depth* levels above the caller is nbgov's own code (the ledger reading
    its snapshot files, a review reading its inputs): never the user's lineage."""
    frame = sys._getframe(depth + 1)
    return frame.f_code.co_filename.startswith(_own_path())


def nested() -> bool:
    """True inside a captured library call: calls it makes itself are not captured again."""
    return bool(getattr(_state, "depth", 0))


@contextmanager
def calling() -> Iterator[None]:
    """Mark a captured call in progress in this thread (Pipeline.fit calls its steps' fit)."""
    _state.depth = getattr(_state, "depth", 0) + 1
    try:
        yield
    finally:
        _state.depth -= 1


Report = Callable[[Any, tuple[Any, ...], dict[str, Any], Any], None]


def reporting(original: Callable[..., Any], hook: str, report: Report, *,
              user_calls_only: bool = False) -> Callable[..., Any]:
    """Wrap *original* so that, after it returns, ``report(recorder, args, kwargs, result)`` runs.

    The wrapper only calls through when no recorder is capturing in this thread, or inside
    another captured call, or (with *user_calls_only*) when library code made the call. *report*
    runs under the recorder's guard: a failure is recorded, never raised. Exceptions of
    *original* itself pass through untouched (nothing is reported).
    """
    from nbgov.capture.recorder import active

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        recorder = active()
        if (recorder is None or nested() or not recorder.capturing() or called_by_nbgov()
                or (user_calls_only and not called_by_user())):
            return original(*args, **kwargs)
        with calling():
            result = original(*args, **kwargs)
        recorder.guard(hook, report, recorder, args, kwargs, result)
        return result

    return wrapper


class Patches:
    """Replacements made on library objects, undone in reverse order by :meth:`undo`."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []
        self._finder: _PostImportFinder | None = None
        self.replaced: dict[int, Any] = {}  # id(original) -> wrapper, for rebinding user names

    def replace(self, owner: Any, name: str, wrapper: Any) -> None:
        """Set ``owner.name = wrapper``; undo restores exactly what was there (or nothing)."""
        namespace = vars(owner)
        had = name in namespace
        original = namespace.get(name)
        setattr(owner, name, wrapper)
        if original is not None:
            self.replaced[id(original)] = wrapper

        def restore() -> None:
            if had:
                setattr(owner, name, original)
            elif name in vars(owner):
                delattr(owner, name)

        self._undo.append(restore)

    def on_undo(self, action: Callable[[], None]) -> None:
        self._undo.append(action)

    def rebind(self, namespace: MutableMapping[str, Any]) -> None:
        """Point names the user bound to a replaced original (``from pandas import read_csv``,
        before capture started) at its wrapper; undo points them back."""
        for key, value in list(namespace.items()):
            wrapper = self.replaced.get(id(value))
            if wrapper is None or wrapper is value:
                continue
            namespace[key] = wrapper

            def restore(key: str = key, original: Any = value, wrapper: Any = wrapper) -> None:
                if namespace.get(key) is wrapper:
                    namespace[key] = original

            self._undo.append(restore)

    def when_imported(self, module: str, callback: Callable[[ModuleType], None]) -> None:
        """Run *callback* on *module* now if it is imported, else right after its import."""
        loaded = sys.modules.get(module)
        if loaded is not None:
            callback(loaded)
            return
        if self._finder is None:
            self._finder = _PostImportFinder()
            sys.meta_path.insert(0, self._finder)
        self._finder.callbacks.setdefault(module, []).append(callback)

    def undo(self) -> None:
        if self._finder is not None:
            if self._finder in sys.meta_path:
                sys.meta_path.remove(self._finder)
            self._finder = None
        while self._undo:
            self._undo.pop()()
        self.replaced.clear()


class _PostImportFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: lets the other finders find a watched module, then wraps its loader."""

    def __init__(self) -> None:
        self.callbacks: dict[str, list[Callable[[ModuleType], None]]] = {}
        self._busy = threading.local()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        callbacks = self.callbacks.get(fullname)
        busy: set[str] = getattr(self._busy, "names", set())
        if not callbacks or fullname in busy:
            return None
        self._busy.names = busy | {fullname}
        try:
            spec = _find_with_others(self, fullname, path, target)
        finally:
            self._busy.names = busy
        if spec is None or spec.loader is None:
            return None
        spec.loader = _NotifyingLoader(spec.loader, self.callbacks.pop(fullname))
        return spec


def _find_with_others(
    skip: object, fullname: str, path: Sequence[str] | None, target: ModuleType | None
) -> importlib.machinery.ModuleSpec | None:
    for finder in sys.meta_path:
        if finder is skip or not hasattr(finder, "find_spec"):
            continue
        spec = finder.find_spec(fullname, path, target)
        if spec is not None:
            return spec
    return None


class _NotifyingLoader(importlib.abc.Loader):
    def __init__(self, loader: Any, callbacks: list[Callable[[ModuleType], None]]) -> None:
        self._loader = loader
        self._callbacks = callbacks

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self._loader  # the real loader, for importlib.resources and friends
        self._loader.exec_module(module)
        for callback in self._callbacks:
            callback(module)

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename, is_package, ...
        return getattr(self._loader, name)
