"""Model descriptions: what a model is for, in its owner's words (``model_described``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nbgov.errors import DescriptionError
from nbgov.events import ModelDescribed
from nbgov.governance.registry import model_version, parse_model_spec

if TYPE_CHECKING:
    from nbgov.ledger import Ledger

__all__ = ["describe_model"]


def _clean(value: str | None) -> str | None:
    text = (value or "").strip()
    return text or None


def describe_model(ledger: Ledger, ref_or_model: str, *, intended_use: str,
                   out_of_scope: str | None = None, limitations: str | None = None,
                   owner: str | None = None, contact: str | None = None) -> str:
    """Record what a model is for (``model_described``); returns the event id.

    Parameters
    ----------
    ref_or_model
        ``NAME@VERSION`` describes that version; ``NAME`` describes every version of the model
        until a later description (a version's own description wins over the model's).
    intended_use
        What the model is for and who uses its output (required).
    out_of_scope, limitations, owner, contact
        Uses it must not be put to, known limitations, the accountable owner, and how to reach them.

    Raises
    ------
    DescriptionError
        The intended use is empty (nothing is recorded).
    UnknownModel
        No such model or version in the ledger (nothing is recorded).
    """
    use = _clean(intended_use)
    if use is None:
        raise DescriptionError("a model description needs its intended use", hint="say what it is for, e.g. "
                               '--intended-use "pre-screening of loan applications"')
    name, version = parse_model_spec(ref_or_model)
    model_version(ledger, ref_or_model)  # refuses an unknown model or version
    return ledger.append(ModelDescribed(
        model=name, version=version, intended_use=use, out_of_scope=_clean(out_of_scope),
        limitations=_clean(limitations), owner=_clean(owner), contact=_clean(contact)))
