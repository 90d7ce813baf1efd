"""Fingerprints of fitted models that survive a save and a load (coverage ``model-state``).

A pickle of a model is not a stable fingerprint: saving and loading again, or another pickle
protocol, changes its bytes. What identifies a fitted model is what it learned, so this hashes
that, with SHA-256, and the same model gives the same digest after ``joblib.dump``/``load``,
``pickle``, ``skops`` or a library's own save and load:

- xgboost and lightgbm boosters (native or inside their scikit-learn wrappers): the booster's own
  serialisation (xgboost's UBJSON ``save_raw``, lightgbm's ``model_to_string``), which both
  libraries reproduce exactly after loading, plus the wrapper's class;
- scikit-learn estimators and any object with a ``__dict__``: the class's qualified name and its
  attributes, walked in sorted order: numbers, strings, ``None`` and booleans by value; numpy
  arrays by dtype, shape and C-order bytes (structured arrays field by field, never their
  padding; object arrays element by element); lists, tuples and
  dicts element by element; estimators inside (pipelines, ensembles, the search's best) the same
  way, recursively; a compiled object (a decision tree's ``Tree``) by the state it pickles.
  Functions and classes count by their qualified name; other objects (random number generators,
  locks, open files) only by their type's name.

The digest is recorded as ``model_fingerprint`` on ``model_fitted``, ``model_saved`` and
``model_loaded`` events: a loaded file whose model has the digest of a recorded version is that
version. Objects this cannot walk give None (and the file's own SHA-256 still identifies it).
"""

from __future__ import annotations

import hashlib
import math
import types
from typing import Any

__all__ = ["MODEL_COVERAGE", "model_fingerprint"]

MODEL_COVERAGE = "model-state"
_MAX_DEPTH = 64


def model_fingerprint(model: Any) -> str | None:
    """The SHA-256 of what *model* learned (see the module docstring), or None."""
    hasher = hashlib.sha256(b"nbgov.model-state.v1\n")
    try:
        _feed(hasher, model, 0, set())
    except (RecursionError, TypeError, ValueError):
        return None
    return hasher.hexdigest()


def _feed(hasher: Any, value: Any, depth: int, seen: set[int]) -> None:
    update = hasher.update
    if depth > _MAX_DEPTH:
        raise RecursionError("model structure too deep")
    if value is None or isinstance(value, bool):
        update(b"c" + repr(value).encode())
        return
    if isinstance(value, int):
        update(b"i%d;" % value)
        return
    if isinstance(value, float):
        update(b"f" + (repr(value) if math.isfinite(value) else str(value)).encode() + b";")
        return
    if isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
        update(b"s%d:" % len(data) + data)
        return
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        update(b"b%d:" % len(data) + data)
        return
    booster = _booster_bytes(value)
    if booster is not None:
        update(b"B" + _qualname(type(value)).encode() + b"%d:" % len(booster) + booster)
        return
    module = type(value).__module__.split(".")[0]
    if module == "numpy":
        _feed_numpy(hasher, value, depth, seen)
        return
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType, types.MethodType, type)):
        update(b"F" + _qualname(value).encode() + b";")
        return
    if isinstance(value, (list, tuple)):
        update(b"l" if isinstance(value, list) else b"t")
        update(b"%d[" % len(value))
        for item in value:
            _feed(hasher, item, depth + 1, seen)
        update(b"]")
        return
    if isinstance(value, dict):
        update(b"d%d{" % len(value))
        for key in sorted(value, key=repr):
            _feed(hasher, key, depth + 1, seen)
            _feed(hasher, value[key], depth + 1, seen)
        update(b"}")
        return
    if module in ("pandas", "polars", "pyarrow"):
        from nbgov.fingerprint.objects import fingerprint_object

        update(b"T" + fingerprint_object(value).digest.encode() + b";")
        return
    state = getattr(value, "__dict__", None)
    if not isinstance(state, dict):
        state = _extension_state(value)  # a compiled object (a scikit-learn Tree): its own state
    if isinstance(state, dict) and id(value) not in seen:
        seen = seen | {id(value)}
        update(b"o" + _qualname(type(value)).encode() + b"{")
        for key in sorted(state):
            if key == "_sklearn_version":  # added by unpickling older files: not learned state
                continue
            _feed(hasher, key, depth + 1, seen)
            _feed(hasher, state[key], depth + 1, seen)
        update(b"}")
        return
    update(b"?" + _qualname(type(value)).encode() + b";")  # an opaque object: its type only


def _feed_numpy(hasher: Any, value: Any, depth: int, seen: set[int]) -> None:
    import numpy as np

    if isinstance(value, np.generic):
        _feed(hasher, value.item(), depth + 1, seen)
        return
    if not isinstance(value, np.ndarray):
        hasher.update(b"?" + _qualname(type(value)).encode() + b";")
        return
    header = f"a{value.dtype.str}{list(value.shape)}:".encode()
    hasher.update(header)
    if value.dtype.names:  # a structured array: field by field (never the padding between)
        for name in value.dtype.names:
            hasher.update(name.encode() + b"=")
            _feed_numpy(hasher, value[name], depth + 1, seen)
    elif value.dtype.hasobject:
        for item in value.ravel(order="C").tolist():
            _feed(hasher, item, depth + 1, seen)
    else:
        hasher.update(np.ascontiguousarray(value).tobytes())


def _extension_state(value: Any) -> dict[str, Any] | None:
    """The state a compiled object pickles (``__getstate__``), when it is a dict."""
    getstate = getattr(value, "__getstate__", None)
    if not callable(getstate):
        return None
    try:
        state = getstate()
    except Exception:  # noqa: BLE001 - an object that cannot give its state: its type only
        return None
    return state if isinstance(state, dict) else None


def _booster_bytes(value: Any) -> bytes | None:
    """A gradient-boosting library's own serialisation of a (wrapped) booster, or None."""
    module = type(value).__module__.split(".")[0]
    if module == "xgboost":
        booster = value if type(value).__name__ == "Booster" else _call(value, "get_booster")
        raw = _call(booster, "save_raw", "ubj")
        return bytes(raw) if raw is not None else None
    if module == "lightgbm":
        booster = value if type(value).__name__ == "Booster" else getattr(value, "booster_", None)
        text = _call(booster, "model_to_string")
        return text.encode() if isinstance(text, str) else None
    return None


def _call(obj: Any, name: str, *args: Any) -> Any:
    method = getattr(obj, name, None) if obj is not None else None
    if not callable(method):
        return None
    try:
        return method(*args)
    except Exception:  # noqa: BLE001 - not fitted, or a library error: no booster to hash
        return None


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__name__)}"
