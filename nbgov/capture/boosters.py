"""Native training of gradient-boosted models: ``xgboost.train`` and ``lightgbm.train``.

A call from the user's code is one model version: the ``Booster`` it returns, named after the
variable it is bound to, with the parameters the user passed (and the number of boosting rounds),
trained on the ``DMatrix``/``Dataset`` given (its data fingerprinted where the library still holds
it). The libraries' scikit-learn wrappers (``XGBClassifier``, ``LGBMRegressor``, ...) are ordinary
estimators; the ``train`` they call inside is library code, never a second version. A booster's
``predict`` from the user's code is a prediction of its version.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable, MutableMapping
from types import ModuleType
from typing import Any

from nbgov.canonical import to_json_value
from nbgov.capture.patching import Patches, called_by_user, calling, nested, reporting

__all__ = ["install_boosters"]

#: The boosting rounds each library runs when the call does not say.
_DEFAULT_ROUNDS = {"xgboost": 10, "lightgbm": 100}


def _train(original: Callable[..., Any], library: str) -> Callable[..., Any]:
    from nbgov.capture.recorder import active

    @functools.wraps(original)
    def train(*args: Any, **kwargs: Any) -> Any:
        recorder = active()
        if recorder is None or nested() or not recorder.capturing() or not called_by_user():
            return original(*args, **kwargs)
        started = time.time_ns()
        with calling():
            booster = original(*args, **kwargs)
        params = args[0] if args else kwargs.get("params", {})
        train_set = args[1] if len(args) > 1 else kwargs.get("dtrain", kwargs.get("train_set"))
        rounds = args[2] if len(args) > 2 else kwargs.get("num_boost_round", _DEFAULT_ROUNDS[library])
        chosen = {**to_json_value(dict(params or {})), "num_boost_round": to_json_value(rounds)}
        recorder.guard("model fit", recorder.booster_trained, booster, chosen, train_set, started)
        return booster

    return train


def _predict(original: Callable[..., Any]) -> Callable[..., Any]:
    def report(recorder: Any, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        data = args[1] if len(args) > 1 else kwargs.get("data")
        recorder.predicted(args[0], "predict", data, result)

    return reporting(original, "prediction", report, user_calls_only=True)


def install_boosters(patches: Patches, namespace: MutableMapping[str, Any]) -> None:
    """Capture the user's native xgboost and lightgbm training (now, or on import)."""

    def library(package: str, training: str, core: str) -> Callable[[ModuleType], None]:
        def patch(top: ModuleType) -> None:
            # After the package's own import: its train is the training module's.
            module = sys.modules.get(training)
            original = vars(module).get("train") if module is not None else None
            if module is None or not callable(original):
                return
            wrapper = _train(original, package)
            patches.replace(module, "train", wrapper)
            if vars(top).get("train") is original:
                patches.replace(top, "train", wrapper)
            booster = getattr(sys.modules.get(core), "Booster", None)
            if booster is not None and callable(vars(booster).get("predict")):
                patches.replace(booster, "predict", _predict(vars(booster)["predict"]))
            patches.rebind(namespace)

        return patch

    patches.when_imported("xgboost", library("xgboost", "xgboost.training", "xgboost.core"))
    patches.when_imported("lightgbm", library("lightgbm", "lightgbm.engine", "lightgbm.basic"))
