"""Configuration files (the policy, the alert sinks): read, validate, and say exactly what is wrong.

A configuration comes from a TOML file or from a ``[tool.nbgov.<name>]`` table of
``pyproject.toml``. It is validated with a pydantic model, and the first problem is reported as
one line, ``SOURCE: KEY: PROBLEM``, through the caller's :class:`~nbgov.errors.FileProblem`
subclass. A value given under a key that names a secret (``password``, ``token``, ``headers``,
...), or that looks like a credential itself, is never echoed in the message.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from nbgov.errors import FileProblem
from nbgov.redaction import looks_secret_name, redact_text

__all__ = ["pyproject_table", "read_toml", "validate_table"]

M = TypeVar("M", bound=BaseModel)


def read_toml(path: Path, source: str, error: type[FileProblem], what: str) -> tuple[bytes, dict[str, Any]]:
    """The file's bytes and its parsed table.

    Raises *error* (``SOURCE: PROBLEM``) when the file is missing, a directory, unreadable, not
    UTF-8 or not TOML; *what* names the kind of file (``policy file``, ``alerts file``).
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise error(source, "", f"{what} not found") from None
    except IsADirectoryError:
        raise error(source, "", f"is a directory, not {_article(what)} {what}") from None
    except OSError as exc:
        raise error(source, "", f"cannot be read ({exc.strerror})") from None
    try:
        return raw, tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise error(source, "", "is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(source, "", f"not valid TOML ({exc})") from None


def pyproject_table(pyproject: Path, dotted: str, error: type[FileProblem], *,
                    strict: bool = True) -> dict[str, Any] | None:
    """The table at *dotted* (e.g. ``tool.nbgov.policy``) of *pyproject*, or None when absent.

    With ``strict=False`` an unreadable ``pyproject.toml`` also gives None (settings resolution
    reports it with its own error); a key at that path that is not a table raises *error*.
    """
    source = str(pyproject)
    if strict:
        _, table = read_toml(pyproject, source, error, "pyproject.toml")
    else:
        try:
            table = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            return None
    found: Any = table
    walked: list[str] = []
    for part in dotted.split("."):
        walked.append(part)
        found = found.get(part)
        if found is None:
            return None
        if not isinstance(found, dict):
            raise error(source, ".".join(walked), "must be a table")
    return dict(found)


def validate_table(
    model: type[M],
    table: Mapping[str, Any],
    source: str,
    error: type[FileProblem],
    *,
    context: dict[str, Any] | None = None,
    secret_keys: Iterable[str] = (),
    locate: Callable[[list[Any]], list[Any]] | None = None,
    explain: Callable[[dict[str, Any], str], tuple[str, str] | None] | None = None,
) -> M:
    """Validate a parsed table with *model*; raise *error* naming the first problem's key.

    Parameters
    ----------
    secret_keys
        Keys whose values are never echoed (besides names that look like secrets).
    locate
        Rewrites pydantic's location into the file's key path (e.g. drops a union's tag).
    explain
        A model-specific (key, problem) for an error (given its dict and the dotted key), or None
        for the usual wording.
    """
    try:
        return model.model_validate(dict(table), context=context)
    except ValidationError as exc:
        errors = exc.errors()
        loc = list(errors[0]["loc"])
        if locate is not None:
            loc = locate(loc)
        key = ".".join(str(part) for part in loc)
        explained = explain(dict(errors[0]), key) if explain is not None else None
        if explained is not None:
            key, problem = explained
        else:
            problem = _problem(dict(errors[0]), loc, frozenset(secret_keys))
        more = len(errors) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise error(source, key, problem + suffix) from None


def _problem(error: dict[str, Any], loc: list[Any], secret_keys: frozenset[str]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind == "model_attributes_type":
        return "must be a table"
    message = str(error["msg"]).removeprefix("Value error, ")
    message = f"{message[0].lower()}{message[1:]}"
    given = error.get("input")
    if not isinstance(given, (str, int, float, bool)):
        return message
    names = [str(part) for part in loc]
    hidden = secret_keys.intersection(names) or any(looks_secret_name(name) for name in names)
    if hidden or (isinstance(given, str) and redact_text(given)[1]):
        return f"{message} (the value is not shown: it may be a secret)"
    return f"{message}, got {given!r}"


def _article(noun: str) -> str:
    return "an" if noun[:1] in "aeiou" else "a"
