"""The base of every event type: a frozen dataclass with a ``TYPE`` name and a schema
``VERSION``, and its canonical payload."""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import fields
from functools import cache
from typing import Any, ClassVar, cast

from nbgov import canonical

__all__ = [
    "Event",
    "check_type_name",
]


_TYPE_NAME = re.compile(r"[a-z][a-z0-9_]*")


class Event:
    """Base of every event type (subclasses are frozen dataclasses)."""

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1
    #: True for types whose fields are, by construction, only strings, integers within the safe
    #: range, booleans, None and lists/dicts of those (no floats, no arbitrary objects): their
    #: payload skips the canonical encoder's safety walk (see :func:`nbgov.canonical.encode_plain`).
    PLAIN: ClassVar[bool] = False

    def payload(self) -> dict[str, Any]:
        """The event's fields as a dict, in declaration order."""
        return {name: getattr(self, name) for name in _field_names(cast(Hashable, type(self)))}

    def encode_payload(self) -> bytes:
        """The payload's canonical JSON."""
        payload = self.payload()
        return canonical.encode_plain(payload) if self.PLAIN else canonical.encode(payload)


@cache
def _field_names(cls: Any) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def check_type_name(name: str) -> bool:
    """True if *name* is a well-formed event type name (lower_snake_case)."""
    return bool(_TYPE_NAME.fullmatch(name))
