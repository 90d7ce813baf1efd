"""Hyperparameter searches and cross-validations: what they tried, and what they chose.

A search (``GridSearchCV``, ``RandomizedSearchCV``, ``HalvingGridSearchCV``,
``HalvingRandomSearchCV``) fitted by the user's code is one ``model_searched`` record, and, when
it refits, one model version: its best estimator, with that estimator's class and real
parameters, named after the search's variable (:meth:`Recorder._emit_search
<nbgov.capture.recorder.Recorder>`). The candidates and folds it fitted are library fits, never
versions. ``cross_val_score``, ``cross_validate`` and ``cross_val_predict`` called by the user
are one ``cross_validated`` record each (the folds, every score per fold), never versions.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from types import ModuleType
from typing import Any

from nbgov.capture.facts import CROSS_VALIDATIONS
from nbgov.capture.patching import Patches, reporting

__all__ = ["install_model_selection"]

def _cross_validation(original: Callable[..., Any], function: str) -> Callable[..., Any]:
    def report(recorder: Any, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        recorder.cross_validated(function, args, kwargs, result)

    return reporting(original, "cross-validation", report, user_calls_only=True)


def install_model_selection(patches: Patches, namespace: MutableMapping[str, Any]) -> None:
    """Capture the user's cross-validations (now, or when scikit-learn's model selection is
    imported). Searches need nothing here: their ``fit`` is an estimator's fit."""

    def patch(module: ModuleType) -> None:
        for function in CROSS_VALIDATIONS:
            original = vars(module).get(function)
            if callable(original):
                patches.replace(module, function, _cross_validation(original, function))
        patches.rebind(namespace)

    patches.when_imported("sklearn.model_selection._validation", patch)
    patches.when_imported("sklearn.model_selection", patch)
