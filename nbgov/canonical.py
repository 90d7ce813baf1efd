"""Canonical JSON: the RFC 8785 (JCS) encoding every hash in nbgov is computed over.

Sorted keys, no whitespace, UTF-8, numbers as ECMAScript prints them. Two encoders produce it:

- a fast path, ``orjson`` with sorted keys, used when a quick walk of the value proves orjson's
  output is already canonical: only exact ``dict``/``list``/``str``/``int``/``float``/``bool``/
  ``None``, ASCII keys (so code-point order equals the UTF-16 order JCS sorts by), integers inside
  the IEEE-754 safe range, and floats that are finite, non-integral and within [1e-4, 1e16)
  (where Python's shortest repr and ECMAScript's agree digit for digit);
- otherwise the reference ``rfc8785`` encoder, after converting numpy scalars and tuples and
  refusing what JSON cannot carry exactly.

Both paths are checked against each other by property tests.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import orjson
import rfc8785

from nbgov.errors import InvalidPayload

__all__ = ["SAFE_INT", "decode", "encode", "encode_plain", "to_json_value"]

#: Integers beyond this magnitude cannot be represented exactly as JSON (IEEE-754) numbers.
SAFE_INT = 2**53 - 1
_SORT = orjson.OPT_SORT_KEYS


def encode(value: Any, *, path: str = "payload") -> bytes:
    """Return the RFC 8785 canonical encoding of *value*.

    Raises
    ------
    InvalidPayload
        If the value holds something JSON cannot carry exactly (NaN, a huge integer, a non-string
        key, an arbitrary object); the error names where in the value it sits.
    """
    if _fast_ok(value):
        try:
            return orjson.dumps(value, option=_SORT)
        except orjson.JSONEncodeError:
            pass  # e.g. a lone surrogate: the slow path names where it is
    normalised = _normalise(value, path)
    try:
        return rfc8785.dumps(normalised)
    except rfc8785.CanonicalizationError as exc:  # pragma: no cover - _normalise refuses first
        raise InvalidPayload(path, str(exc)) from None


def encode_plain(value: Any, *, path: str = "payload", skip_none: bool = False) -> bytes:
    """Canonical encoding of a value built only from strings, safe-range integers, booleans,
    None and lists/dicts of those with ASCII keys, skipping :func:`encode`'s safety walk.

    orjson's sorted output is RFC 8785 for exactly such values (floats are what it would print
    differently, so plain values must have none; tests check the event types that use this).
    Anything orjson refuses (a lone surrogate, an object) goes to :func:`encode` for its error.
    ``skip_none`` leaves out a dict's keys whose value is None.
    """
    if skip_none:
        value = {k: v for k, v in value.items() if v is not None}
    try:
        return orjson.dumps(value, option=_SORT)
    except (orjson.JSONEncodeError, TypeError):
        return encode(value, path=path)


def decode(data: bytes | str) -> Any:
    """Parse JSON text (canonical or not)."""
    return orjson.loads(data)


def _fast_ok(value: Any) -> bool:
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not key.isascii():
                return False
            item_kind = type(item)
            if item_kind is str or item_kind is bool or item is None:
                continue
            if not _fast_ok(item):
                return False
        return True
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return bool(-SAFE_INT <= value <= SAFE_INT)
    if kind is float:
        return bool(1e-4 <= abs(value) < 1e16) and not value.is_integer()
    if kind is list:
        return all(_fast_ok(item) for item in value)
    return False


def _normalise(value: Any, path: str) -> Any:
    """Return *value* as plain JSON types, or raise InvalidPayload naming *path*."""
    if value is None or isinstance(value, (bool, str)):
        if isinstance(value, str):
            _check_text(value, path)
            return str(value)
        return bool(value) if value is not None else None
    if isinstance(value, int):
        return _check_int(int(value), path)
    if isinstance(value, float):
        return _check_float(float(value), path)
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidPayload(
                    f"{path}[{key!r}]",
                    f"key of type {type(key).__name__} (JSON object keys must be strings)",
                    hint="convert the keys to str before recording",
                )
            _check_text(key, f"{path} key {key!r}")
            out[str(key)] = _normalise(item, f"{path}[{key!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_normalise(item, f"{path}[{i}]") for i, item in enumerate(value)]
    # numpy and similar scalars: a zero-dimensional value with .item()
    if getattr(value, "shape", None) == () and hasattr(value, "item"):
        return _normalise(value.item(), path)
    if hasattr(value, "__index__") and not hasattr(value, "shape"):
        return _check_int(operator.index(value), path)
    raise InvalidPayload(
        path,
        f"value of type {type(value).__module__}.{type(value).__qualname__} is not JSON",
        hint="record plain str/int/float/bool/None, lists and dicts (e.g. str(value))",
    )


def _check_int(value: int, path: str) -> int:
    if not -SAFE_INT <= value <= SAFE_INT:
        raise InvalidPayload(
            path,
            f"integer {value} is outside ±(2**53-1), which JSON numbers cannot carry exactly",
            hint="record it as a string",
        )
    return value


def _check_float(value: float, path: str) -> float:
    if not math.isfinite(value):
        raise InvalidPayload(
            path,
            f"{value!r} is not a JSON number",
            hint="record None, or a string such as 'nan', instead",
        )
    return value


def _check_text(value: str, path: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidPayload(
            path, "string holds a lone surrogate and is not valid Unicode text"
        ) from None


def to_json_value(value: Any, _depth: int = 0) -> Any:
    """*value* as plain JSON: numbers, strings, lists, string-keyed dicts.

    Objects become a readable description (an estimator its repr, a class or function its
    qualified name); NaN and infinities become strings; small arrays become lists.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value) if -SAFE_INT <= value <= SAFE_INT else str(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else str(value)
    if _depth > 6:
        return _describe(value)
    if isinstance(value, dict):
        return {str(k): to_json_value(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(v, _depth + 1) for v in value[:1000]]
    shape = getattr(value, "shape", None)
    if shape == () and hasattr(value, "item"):  # a numpy scalar
        return to_json_value(value.item(), _depth + 1)
    if isinstance(shape, tuple) and hasattr(value, "tolist") and _size(shape) <= 100:
        return to_json_value(value.tolist(), _depth + 1)
    return _describe(value)


def _size(shape: tuple[Any, ...]) -> int:
    total = 1
    for dim in shape:
        total *= int(dim)
    return total


def _describe(value: Any) -> str:
    if isinstance(value, type) or callable(value) and hasattr(value, "__qualname__"):
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', repr(value))}"
    text = repr(value)
    return " ".join(text.split())[:300]
