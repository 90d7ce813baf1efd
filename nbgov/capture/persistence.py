"""Models saved to files and loaded from them: ``model_saved`` and ``model_loaded``.

Captured when the user's code calls them: ``joblib.dump``/``load``, ``pickle.dump``/``load`` (of
a file object), ``skops.io.dump``/``load`` where skops is installed, and the native formats of
xgboost (``Booster.save_model``/``load_model``, ``Booster(model_file=...)``, the scikit-learn
wrappers' ``save_model``/``load_model``) and lightgbm (``Booster.save_model``,
``Booster(model_file=...)``). Only models count (an estimator, a booster, anything with
``predict`` or ``transform``): pickled data is not a model file.

Each record holds the file's path and SHA-256 and the model's stable fingerprint
(:mod:`nbgov.fingerprint.models`, the same after a save and a load). A loaded model that this
session fitted or loaded before is that version at once; otherwise the ledger's views match the
file or the fingerprint against recorded saves and fits, and a load that matches nothing is an
*unrecorded model*.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, MutableMapping
from types import ModuleType
from typing import Any

from nbgov.capture.facts import is_model
from nbgov.capture.patching import Patches, called_by_user, calling, nested

__all__ = ["install_persistence"]


def _report(recorder: Any, direction: str, via: str, model: Any, target: Any) -> None:
    if direction == "saved":
        recorder.model_saved(model, target, via)
    else:
        recorder.model_loaded(model, target, via)


Pick = Callable[[tuple[Any, ...], dict[str, Any], Any], "tuple[Any, Any] | None"]


def _wrap(original: Callable[..., Any], via: str, direction: str, pick: Pick) -> Callable[..., Any]:
    """Wrap a save or load; *pick* says which (model, file) the call concerns, or None."""
    from nbgov.capture.recorder import active

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        recorder = active()
        if recorder is None or nested() or not recorder.capturing() or not called_by_user():
            return original(*args, **kwargs)
        with calling():
            result = original(*args, **kwargs)
        picked = recorder.guard("model file", pick, args, kwargs, result)
        if picked is not None and is_model(picked[0]):
            recorder.guard("model file", _report, recorder, direction, via, picked[0], picked[1])
        return result

    return wrapper


def _first(name: str, index: int) -> Callable[[tuple[Any, ...], dict[str, Any]], Any]:
    return lambda args, kwargs: args[index] if len(args) > index else kwargs.get(name)


def _dump(model_arg: tuple[str, int], file_arg: tuple[str, int]) -> Callable[..., tuple[Any, Any] | None]:
    model_of, file_of = _first(*model_arg), _first(*file_arg)
    return lambda args, kwargs, result: (model_of(args, kwargs), file_of(args, kwargs))


def _load(file_arg: tuple[str, int]) -> Callable[..., tuple[Any, Any] | None]:
    file_of = _first(*file_arg)
    return lambda args, kwargs, result: (result, file_of(args, kwargs))


def _method_save(file_arg: tuple[str, int]) -> Callable[..., tuple[Any, Any] | None]:
    file_of = _first(*file_arg)  # args[0] is self
    return lambda args, kwargs, result: (args[0], file_of(args, kwargs))


def _booster_init(args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> tuple[Any, Any] | None:
    target = kwargs.get("model_file")
    return (args[0], target) if target is not None else None


def install_persistence(patches: Patches, namespace: MutableMapping[str, Any]) -> None:
    """Capture the user's model saves and loads (now, or when each library is imported)."""

    def module_functions(module: ModuleType, entries: dict[str, tuple[str, Any]]) -> None:
        for name, (direction, pick) in entries.items():
            original = vars(module).get(name)
            if callable(original):
                patches.replace(module, name, _wrap(original, f"{module.__name__}.{name}", direction, pick))
        patches.rebind(namespace)

    def methods(cls: Any, entries: dict[str, tuple[str, Any]]) -> None:
        for name, (direction, pick) in entries.items():
            original = vars(cls).get(name)
            if callable(original):
                patches.replace(cls, name, _wrap(original, f"{cls.__module__}.{cls.__qualname__}.{name}",
                                                 direction, pick))

    patches.when_imported("joblib", lambda m: module_functions(m, {
        "dump": ("saved", _dump(("value", 0), ("filename", 1))),
        "load": ("loaded", _load(("filename", 0)))}))
    patches.when_imported("pickle", lambda m: module_functions(m, {
        "dump": ("saved", _dump(("obj", 0), ("file", 1))),
        "load": ("loaded", _load(("file", 0)))}))
    patches.when_imported("skops.io", lambda m: module_functions(m, {
        "dump": ("saved", _dump(("obj", 0), ("file", 1))),
        "load": ("loaded", _load(("file", 0)))}))

    def xgboost(core: ModuleType) -> None:
        methods(core.Booster, {"save_model": ("saved", _method_save(("fname", 1))),
                               "load_model": ("loaded", _method_save(("fname", 1))),
                               "__init__": ("loaded", _booster_init)})

    def xgboost_sklearn(module: ModuleType) -> None:
        methods(module.XGBModel, {"save_model": ("saved", _method_save(("fname", 1))),
                                  "load_model": ("loaded", _method_save(("fname", 1)))})

    def lightgbm(basic: ModuleType) -> None:
        methods(basic.Booster, {"save_model": ("saved", _method_save(("filename", 1))),
                                "__init__": ("loaded", _booster_init)})

    patches.when_imported("xgboost.core", xgboost)
    patches.when_imported("xgboost.sklearn", xgboost_sklearn)
    patches.when_imported("lightgbm.basic", lightgbm)
