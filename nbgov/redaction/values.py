"""Redacting values and remembering secrets: :func:`redact_value` for JSON-like values (recorded
parameters), and :class:`SecretMemory`, which hides a secret redacted once wherever it shows up
again in the session (:func:`removed_values` finds what was taken out).
"""

from __future__ import annotations

from typing import Any

from nbgov.redaction.names import looks_secret_name
from nbgov.redaction.text import REDACTED, redact_text

__all__ = ["SecretMemory", "redact_value", "removed_values"]


# --- values -------------------------------------------------------------------------------------


def redact_value(value: Any, name: str | None = None) -> Any:
    """Return a copy of a JSON-like *value* with its secrets replaced by :data:`REDACTED`.

    - The whole value, when *name* looks secret (:func:`looks_secret_name`) and the value holds
      something: ``None``, booleans (``token=True`` means "use my stored token") and empty strings
      or containers are kept;
    - dict entries whose key looks secret, the same way, at any depth;
    - every string (values and dict keys) through :func:`redact_text`, so a known secret format is
      caught under any name.

    dicts, lists and tuples are rebuilt (as ``dict``, ``list``, ``tuple``); the input is never
    modified. Other values (numbers, bytes, arbitrary objects) are returned as they are.

    Examples
    --------
    >>> redact_value({"C": 1.0, "db": {"password": "hunter2"}, "url": "redis://:pw42@cache:6379"})
    {'C': 1.0, 'db': {'password': '[REDACTED]'}, 'url': 'redis://:[REDACTED]@cache:6379'}
    """
    if name is not None and _holds_something(value) and looks_secret_name(name):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)[0]
    if isinstance(value, dict):
        return {_redact_key(key): redact_value(item, _name_of(key)) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_value(item) for item in value]
    if isinstance(value, tuple):
        return tuple(redact_value(item) for item in value)
    return value


def _redact_key(key: Any) -> Any:
    return redact_text(key)[0] if isinstance(key, str) else key


def _name_of(key: Any) -> str | None:
    return key if isinstance(key, str) else None


def _holds_something(value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return False
    return not isinstance(value, (str, bytes, dict, list, tuple)) or len(value) > 0


# --- remembering what was redacted --------------------------------------------------------------


def removed_values(original: str, redacted: str) -> list[str]:
    """The values :func:`redact_text` took out of *original* to make *redacted*.

    The kept text between markers is found in *original* in order; what lies between is a
    removed value. Used to recognise the same secret later where nothing marks it as one
    (``raise ValueError(f"login failed for {password}")``).
    """
    parts = redacted.split(REDACTED)
    values: list[str] = []
    position = len(parts[0]) if original.startswith(parts[0]) else 0
    for part in parts[1:]:
        end = original.find(part, position) if part else len(original)
        if end < 0:
            break
        values.append(original[position:end])
        position = end + len(part)
    return values


class SecretMemory:
    """Secrets a session has seen redacted once, hidden wherever they show up again.

    Only values of at least :data:`MIN_REMEMBERED` characters are remembered, so that a short
    value never turns ordinary text into markers. Kept in memory only, never recorded.
    """

    MIN_REMEMBERED = 6

    def __init__(self) -> None:
        self._values: set[str] = set()

    def __len__(self) -> int:
        return len(self._values)

    def redact(self, text: str) -> tuple[str, int]:
        """:func:`redact_text`, plus every secret remembered from earlier texts."""
        redacted, count = redact_text(text)
        if count:
            self._values.update(v for v in removed_values(text, redacted) if len(v) >= self.MIN_REMEMBERED)
        for value in self._values:
            if value in redacted:
                count += redacted.count(value)
                redacted = redacted.replace(value, REDACTED)
        return redacted, count

    def redact_value(self, value: Any, name: str | None = None) -> Any:
        """:func:`redact_value`, plus every remembered secret inside its strings."""
        cleaned = redact_value(value, name)
        return self._scrub(cleaned) if self._values else cleaned

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self._values:
                if secret in value:
                    value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, dict):
            return {self._scrub(k): self._scrub(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self._scrub(v) for v in value)
        return value
