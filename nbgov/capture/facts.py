"""What capture records about a search, a cross-validation, a model file or a booster's training
data: pure functions of the objects involved, used by the recorder and by the library patches."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any

from nbgov.canonical import to_json_value

__all__ = [
    "CROSS_VALIDATIONS",
    "MAX_RESULTS",
    "describe_cross_validation",
    "describe_search",
    "is_model",
    "is_search",
    "model_file",
    "training_data",
]

CROSS_VALIDATIONS = ("cross_val_score", "cross_validate", "cross_val_predict")
#: At most this many candidates' results are kept in a search record (the rest are counted).
MAX_RESULTS = 500


def is_search(estimator: Any) -> bool:
    """True for a fitted scikit-learn hyperparameter search."""
    search = sys.modules.get("sklearn.model_selection._search")
    base = getattr(search, "BaseSearchCV", None)
    return base is not None and isinstance(estimator, base) and hasattr(estimator, "cv_results_")


def _path(obj: Any) -> str:
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def describe_search(search: Any) -> dict[str, Any]:
    """The fields of a ``model_searched`` event for a fitted search (model and data aside)."""
    results = getattr(search, "cv_results_", {}) or {}
    params = list(results.get("params", []))
    kept = [key for key in results if key.startswith(("mean_test_", "std_test_", "rank_test_"))]
    rows = []
    for index, candidate in enumerate(params[:MAX_RESULTS]):
        row: dict[str, Any] = {"params": to_json_value(candidate)}
        for key in kept:
            row[key] = to_json_value(results[key][index])
        rows.append(row)
    space = getattr(search, "param_grid", None)
    if space is None:
        space = getattr(search, "param_distributions", None)
    best_score = getattr(search, "best_score_", None)
    return {
        "search": _path(search),
        "estimator": _path(search.estimator),
        "candidates": len(params),
        "folds": _int(getattr(search, "n_splits_", None)),
        "space": to_json_value(space),
        "scoring": to_json_value(getattr(search, "scoring", None)),
        "refit": to_json_value(getattr(search, "refit", None)),
        "best_params": to_json_value(getattr(search, "best_params_", None)),
        "best_score": to_json_value(best_score) if best_score is not None else None,
        "best_index": _int(getattr(search, "best_index_", None)),
        "results": rows,
    }


def describe_cross_validation(function: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                              result: Any) -> dict[str, Any]:
    """The fields of a ``cross_validated`` event (model and data aside)."""
    estimator = args[0] if args else kwargs.get("estimator")
    get_params = getattr(estimator, "get_params", None)
    scores: dict[str, list[Any]] = {}
    if function == "cross_val_score":
        scores["test_score"] = to_json_value(list(result))
    elif function == "cross_validate" and isinstance(result, dict):
        for key, values in result.items():
            if key.startswith(("test_", "train_")):
                scores[key] = to_json_value(list(values))
    folds = next((len(v) for v in scores.values()), None)
    if folds is None:
        folds = _folds(kwargs.get("cv"), args[1] if len(args) > 1 else kwargs.get("X"),
                       args[2] if len(args) > 2 else kwargs.get("y"), kwargs.get("groups"))
    means = {key: to_json_value(sum(values) / len(values)) for key, values in scores.items()
             if values and all(isinstance(v, (int, float)) for v in values)}
    return {
        "function": f"sklearn.model_selection.{function}",
        "estimator": _path(estimator),
        "params": to_json_value(get_params(deep=False)) if callable(get_params) else {},
        "folds": folds,
        "scoring": to_json_value(kwargs.get("scoring")),
        "scores": scores or None,
        "means": means or None,
    }


def _folds(cv: Any, X: Any, y: Any, groups: Any) -> int | None:
    if cv is None:
        return 5  # scikit-learn's default
    if isinstance(cv, int):
        return cv
    get_n_splits = getattr(cv, "get_n_splits", None)
    if callable(get_n_splits):
        try:
            return int(get_n_splits(X, y, groups))
        except Exception:  # noqa: BLE001 - a splitter that cannot say: unknown
            return None
    try:
        return len(list(cv))
    except TypeError:
        return None


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int,)) or hasattr(value, "__index__") else None


def is_model(obj: Any) -> bool:
    """True for what a model file holds: an estimator, a booster, anything that predicts."""
    if obj is None or isinstance(obj, (str, bytes, int, float, list, tuple, dict, set)):
        return False
    if type(obj).__name__ == "Booster" and type(obj).__module__.split(".")[0] in ("xgboost", "lightgbm"):
        return True
    return callable(getattr(obj, "fit", None)) and (
        callable(getattr(obj, "predict", None)) or callable(getattr(obj, "transform", None)))


def model_file(target: Any) -> tuple[str, str | None, int | None]:
    """(absolute path, SHA-256, size) of a model file given as a path or an open file object
    (flushed first, so what was written is what is hashed); the hash is None when unreadable."""
    if hasattr(target, "write") and callable(getattr(target, "flush", None)):
        try:
            target.flush()
        except (OSError, ValueError):
            pass
    name = getattr(target, "name", target)
    if not isinstance(name, (str, os.PathLike)):
        raise TypeError("no file name")
    path = Path(os.fspath(name)).expanduser().absolute()
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            size = 0
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
                size += len(block)
    except OSError:
        return str(path), None, None
    return str(path), digest.hexdigest(), size


def training_data(train_set: Any) -> tuple[Any, Any]:
    """(features, labels) of a ``DMatrix`` or a ``Dataset``, where the library keeps them."""
    data = getattr(train_set, "data", None)  # lightgbm keeps what it was built from
    label = getattr(train_set, "label", None)
    if data is None and callable(getattr(train_set, "get_data", None)):
        try:
            data = train_set.get_data()  # xgboost: a CSR copy of the matrix
        except Exception:  # noqa: BLE001 - an external-memory or quantile matrix: not available
            data = None
    if label is None and callable(getattr(train_set, "get_label", None)):
        try:
            label = train_set.get_label()
        except Exception:  # noqa: BLE001
            label = None
    return data, label
