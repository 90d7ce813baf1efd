"""Typed events: registry, envelope, body checks."""

from __future__ import annotations

import dataclasses
import os

import orjson
import pytest
import rfc8785

from nbgov import events
from nbgov.errors import InvalidPayload, UnknownEventType
from nbgov.events import EVENT_TYPES, make_event
from nbgov.identity import Actor, resolve_actor
from nbgov.ledger import envelope
from nbgov.ledger.envelope import BodyError, check_body, encode_body


def test_every_type_is_a_frozen_dataclass_with_a_valid_name() -> None:
    for name, cls in EVENT_TYPES.items():
        assert cls.TYPE == name
        assert events.check_type_name(name)
        assert dataclasses.is_dataclass(cls)
        assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
        assert cls.VERSION >= 1


def test_events_are_immutable() -> None:
    event = events.SessionEnded(reason="done")
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.reason = "changed"  # type: ignore[misc]


def test_unknown_type_is_refused_with_the_known_list() -> None:
    with pytest.raises(UnknownEventType) as info:
        make_event("model_trained", model="m")
    assert "model_fitted" in info.value.hint


def test_wrong_fields_are_refused() -> None:
    with pytest.raises(InvalidPayload, match="SessionEnded"):
        make_event("session_ended", why="x")


def test_encoded_body_is_canonical_and_passes_the_check() -> None:
    actor = Actor("ana", "os")
    session = envelope.Session(kernel_id="k", cell_id="c", execution_count=3)
    payload = {"metrics": {"auc": 0.91, "n": 10}}
    body = encode_body(actor=actor.encoded, event_id="seg:1", payload=rfc8785.dumps(payload),
                       session=session.encoded, time_text="2026-11-28T10:00:00.000001Z",
                       type_name="metrics_logged", version=1)
    assert body == rfc8785.dumps(orjson.loads(body))
    assert check_body(body) == "seg:1"


def _body(**changes: object) -> bytes:
    data: dict[str, object] = {
        "actor": {"id": "ana", "source": "os"}, "id": "s:1", "payload": {}, "session": None,
        "time": "2026-11-28T10:00:00.000001Z", "type": "session_ended", "v": 1,
    }
    data.update(changes)
    return rfc8785.dumps({k: v for k, v in data.items() if v != "DROP"})


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not JSON"),
        (_body(type="bogus"), "unknown event type"),
        (_body(v=2), "schema version"),
        (_body(v="1"), "schema version"),
        (_body(actor={"id": "", "source": "os"}), "actor"),
        (_body(actor="ana"), "actor"),
        (_body(time="2026-11-28 10:00:00"), "time"),
        (_body(time="2026-02-30T10:00:00.000001Z"), "time"),
        (_body(payload=[1]), "payload"),
        (_body(session="k"), "session"),
        (_body(extra=1), "envelope"),
        (_body(session="DROP"), "envelope"),
    ],
)
def test_malformed_bodies_are_refused(body: bytes, fragment: str) -> None:
    with pytest.raises(BodyError, match=fragment):
        check_body(body)


def test_actor_prefers_jupyterhub_then_configured_then_os() -> None:
    assert resolve_actor({"JUPYTERHUB_USER": "hub", "NBGOV_ACTOR": "svc"}) == Actor("hub", "jupyterhub")
    assert resolve_actor({"NBGOV_ACTOR": "svc"}) == Actor("svc", "configured")
    assert resolve_actor({}).source == "os"


def test_the_cell_hooks_fast_encoding_is_the_canonical_one() -> None:
    from nbgov.events import CellExecuted, cell_payload

    fields = dict(node="cell:s:1", cell_id="c1", execution_count=3, source_sha256="ab" * 32,
                  source="x = '\u00e9\\n'  # caf\u00e9", started_at="2026-11-28T10:00:00.000001Z",
                  duration_us=12, ok=False, error_type="KeyError", uses=["a", "b"], defines=["x"],
                  inputs=["cell:s:0"], bindings=[{"name": "x", "node": "var:s:1:x", "inputs": ["var:s:0:a"]}],
                  redactions=1)
    event = CellExecuted(**fields)
    assert cell_payload(**fields) == event.encode_payload() == rfc8785.dumps(event.payload())
    session = envelope.Session(session_id="s", cell_id="c1", cell_run="cell:s:1", notebook="n.ipynb")
    from nbgov.canonical import encode_plain

    assert encode_plain({"cell_id": "c1", "cell_run": "cell:s:1", "kernel_id": None, "notebook": "n.ipynb",
                         "session_id": "s"}, skip_none=True) == session.encoded


def test_the_os_identity_is_the_process_uid_not_user_or_logname() -> None:
    # USER and LOGNAME are whatever the caller exported: `USER=rita nbgov approve` must not act as rita.
    import pwd
    import subprocess
    import sys

    own = pwd.getpwuid(os.getuid()).pw_name
    script = "from nbgov.identity import resolve_actor; a = resolve_actor(); print(a.id, a.source)"
    env = {k: v for k, v in os.environ.items() if k not in ("JUPYTERHUB_USER", "NBGOV_ACTOR")}
    for forged in ({"USER": "rita"}, {"LOGNAME": "rita"}, {"USER": "rita", "LOGNAME": "rita", "LNAME": "rita",
                                                              "USERNAME": "rita"}):
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                env={**env, **forged}, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == [own, "os"], forged
    assert own != "rita"
