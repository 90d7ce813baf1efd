"""The envelope every event travels in, and its canonical encoding.

On the way to the ledger an event is wrapped in an envelope and encoded as canonical JSON
(RFC 8785)::

    {"actor":{"id":..,"source":..},"id":"<segment>:<line>","payload":{..},
     "session":{..}|null,"time":"2026-11-28T18:36:38.123456Z","type":"cell_executed","v":1}

The ledger hashes that body, together with its ledger-assigned ``seq`` and ingest time, as an
RFC 9162 leaf (see :mod:`nbgov.ledger.integrity.chain`).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property, lru_cache

import orjson

from nbgov import canonical
from nbgov.events.base import _field_names
from nbgov.events.registry import EVENT_TYPES

__all__ = [
    "BodyError",
    "Session",
    "check_body",
    "encode_body",
    "format_time",
]


_SECOND = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}")


@dataclass(frozen=True)
class Session:
    """Where events happen: the kernel, notebook, cell or review run they belong to.

    Built once per cell or run and shared by the events recorded in it; its canonical encoding is
    computed once.
    """

    session_id: str | None = None
    kernel_id: str | None = None
    notebook: str | None = None
    cell_id: str | None = None
    cell_run: str | None = None
    execution_count: int | None = None
    run_id: str | None = None

    @cached_property
    def encoded(self) -> bytes:
        # Identifiers and counters only (strings and ints): the plain encoder is canonical here.
        names = _field_names(Session)
        return canonical.encode_plain(
            {k: v for k in names if (v := getattr(self, k)) is not None}, path="session")


def format_time(ns: int) -> str:
    """Format nanoseconds since the epoch as the ledger's UTC timestamp (microseconds)."""
    seconds, micros = divmod(ns // 1000, 1_000_000)
    return f"{_second(seconds)}.{micros:06d}Z"


@lru_cache(maxsize=16)
def _second(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def encode_body(
    *,
    actor: bytes,
    event_id: str,
    payload: bytes,
    session: bytes | None,
    time_text: str,
    type_name: str,
    version: int,
) -> bytes:
    """Assemble the canonical event body from already-canonical parts.

    The keys are written in RFC 8785 order (actor, id, payload, session, time, type, v), so the
    result is canonical without re-encoding the payload.
    """
    return b'{"actor":%b,"id":%b,"payload":%b,"session":%b,"time":"%b","type":"%b","v":%d}' % (
        actor,
        orjson.dumps(event_id),
        payload,
        b"null" if session is None else session,
        time_text.encode("ascii"),
        type_name.encode("ascii"),
        version,
    )


class BodyError(ValueError):
    """An event body read back from the spool does not have the envelope's shape."""


_ENVELOPE_KEYS = ("actor", "id", "payload", "session", "time", "type", "v")


_ACTOR_KEYS = ("id", "source")


def check_body(body: bytes | memoryview) -> str:
    """Check that *body* is a well-formed event of a known type; return its event id.

    This runs once per event at ingest, so it checks structure without building objects.
    Whatever passes here is safe for the ledger's column extraction (known type and version,
    a valid UTC timestamp, an actor with a non-empty id).

    Raises
    ------
    BodyError
        Saying what is wrong.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BodyError(f"body is not JSON ({exc})") from None
    if type(data) is not dict or tuple(data) != _ENVELOPE_KEYS:
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise BodyError(f"body does not have the event envelope's keys in order (found {keys})")
    type_name, version = data["type"], data["v"]
    cls = EVENT_TYPES.get(type_name) if type(type_name) is str else None
    if cls is None:
        raise BodyError(f"unknown event type {type_name!r}")
    if type(version) is not int or not 1 <= version <= cls.VERSION:
        raise BodyError(f"{type_name} schema version {version!r} is not one this nbgov reads")
    actor = data["actor"]
    if (
        type(actor) is not dict
        or tuple(actor) != _ACTOR_KEYS
        or type(actor["id"]) is not str
        or not actor["id"]
        or type(actor["source"]) is not str
    ):
        raise BodyError("actor must be {id, source} strings with a non-empty id")
    time_text = data["time"]
    if not (
        type(time_text) is str
        and len(time_text) == 27
        and time_text[19] == "."
        and time_text[26] == "Z"
        and time_text[20:26].isascii()
        and time_text[20:26].isdigit()
        and _valid_second(time_text[:19])
    ):
        raise BodyError(f"time {time_text!r} is not a valid UTC timestamp with microseconds")
    if type(data["payload"]) is not dict:
        raise BodyError("payload must be a JSON object")
    if data["session"] is not None and type(data["session"]) is not dict:
        raise BodyError("session must be a JSON object or null")
    event_id = data["id"]
    if type(event_id) is not str:
        raise BodyError("id must be a string")
    return event_id


@lru_cache(maxsize=4096)
def _valid_second(text: str) -> bool:
    """True for 'YYYY-MM-DDTHH:MM:SS' naming a real date and time (cached: events cluster)."""
    if not _SECOND.fullmatch(text):
        return False
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True
