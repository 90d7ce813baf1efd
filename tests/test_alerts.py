"""Alert sinks: configuration (NBGOV_ALERTS, [tool.nbgov.alerts]) and delivery to real sinks."""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pydantic import ValidationError

from nbgov.alerts.sinks import (
    AlertConfig,
    CommandSink,
    FileSink,
    WebhookSink,
    deliver,
    find_alert_config,
)
from nbgov.canonical import encode
from nbgov.errors import AlertConfigError, DeliveryError
from support.helpers import wait_for

ALERT = {"reason": "review_overdue", "job": "credit-model", "key": "credit-model:2024-06-01",
         "due": "2024-06-01", "score": 0.25}
TOKEN = "s3cr3t-token-value"


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """urllib honours proxy variables: requests to 127.0.0.1 must go straight to the test server."""
    for name in list(os.environ):
        if name.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
            monkeypatch.delenv(name)


@dataclass
class Server:
    """A real HTTP server on 127.0.0.1 answering POSTs with the next status from ``statuses``."""

    statuses: list[int]
    #: Answer only once the test is over (``release`` is set at teardown): a client that waited for
    #: the answer would never return.
    hold: bool = False
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    answered: int = 0
    release: threading.Event = field(default_factory=threading.Event)
    url: str = ""


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    started: list[tuple[ThreadingHTTPServer, Server]] = []

    def start(statuses: list[int], hold: bool = False) -> Server:
        state = Server(list(statuses), hold)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                state.received.append((dict(self.headers.items()), body))
                if state.hold:
                    state.release.wait()
                status = state.statuses.pop(0) if state.statuses else 200
                self.send_response(status)
                if status in (301, 302, 307):
                    self.send_header("Location", state.url + "elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()
                state.answered += 1

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        state.url = f"http://127.0.0.1:{server.server_address[1]}/hook/"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append((server, state))
        return state

    yield start
    for server, state in started:
        state.release.set()
        server.shutdown()
        server.server_close()


def webhook(url: str, **extra: object) -> WebhookSink:
    return WebhookSink.model_validate({"type": "webhook", "name": "ops", "url": url,
                                       "headers": {"Authorization": f"Bearer {TOKEN}"}, **extra})


# --- webhook -------------------------------------------------------------------------------------

def test_webhook_fails_on_500_then_delivers(serve) -> None:
    server = serve([500, 200])
    sink = webhook(server.url)
    with pytest.raises(DeliveryError) as info:
        deliver(sink, ALERT)
    assert "500" in info.value.message and server.url in info.value.message
    assert info.value.sink == "webhook sink 'ops'"
    assert TOKEN not in info.value.one_line()
    deliver(sink, ALERT)
    assert len(server.received) == 2
    headers, body = server.received[1]
    assert body == encode(ALERT)
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["Content-Type"] == "application/json"


def test_webhook_timeout(serve) -> None:
    server = serve([200], hold=True)
    with pytest.raises(DeliveryError, match=r"timeout after 0\.2s") as info:
        deliver(webhook(server.url, timeout=0.2), ALERT)
    # The answer was given up on, not waited for: the server answers nothing before the test ends
    # (waiting would hang until pytest's timeout), and the request did reach it.
    wait_for(lambda: len(server.received) == 1, "the request to reach the server")
    assert server.answered == 0
    assert TOKEN not in str(info.value)


def test_webhook_connection_refused() -> None:
    with socket.socket() as bound:  # bound but not listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{bound.getsockname()[1]}/hook"
        with pytest.raises(DeliveryError, match="cannot reach") as info:
            deliver(webhook(url), ALERT)
    assert "refused" in info.value.message.lower()
    assert TOKEN not in info.value.message


def test_webhook_redirect_is_a_failure_and_headers_do_not_follow(serve) -> None:
    server = serve([302])
    with pytest.raises(DeliveryError, match="HTTP 302"):
        deliver(webhook(server.url), ALERT)
    assert len(server.received) == 1


def test_webhook_url_query_is_not_shown(serve) -> None:
    server = serve([503])
    with pytest.raises(DeliveryError) as info:
        deliver(webhook(server.url + "?token=q-secret"), ALERT)
    assert "HTTP 503 from " + server.url in info.value.message and "q-secret" not in info.value.message


def test_header_values_stay_out_of_reprs_and_validation_errors() -> None:
    sink = webhook("https://example.org/hook")
    assert TOKEN not in repr(sink) and TOKEN not in str(sink)
    assert sink.headers["Authorization"] == f"Bearer {TOKEN}"
    with pytest.raises(ValidationError) as info:
        WebhookSink.model_validate({"type": "webhook", "url": "https://example.org",
                                    "headers": {"Authorization": f"{TOKEN}\nX-Evil: 1"}})
    assert TOKEN not in str(info.value)


# --- command -------------------------------------------------------------------------------------

RECORD = ("import json, os, sys; json.dump({'stdin': sys.stdin.read(), "
          "'env': {k: v for k, v in os.environ.items() if k.startswith('NBGOV_ALERT_')}}, open(sys.argv[1], 'w'))")


def test_command_gets_the_alert_on_stdin_and_in_its_environment(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBGOV_ALERT_JOB", "stale-from-parent")
    out = tmp_path / "out.json"
    sink = CommandSink(type="command", command=[sys.executable, "-c", RECORD, str(out)])
    deliver(sink, ALERT)
    seen = json.loads(out.read_text())
    assert seen["stdin"] == encode(ALERT).decode()
    assert seen["env"] == {"NBGOV_ALERT_REASON": "review_overdue", "NBGOV_ALERT_JOB": "credit-model",
                           "NBGOV_ALERT_KEY": "credit-model:2024-06-01"}
    deliver(sink, {"reason": "r", "key": "k", "job": None})
    assert json.loads(out.read_text())["env"] == {"NBGOV_ALERT_REASON": "r", "NBGOV_ALERT_KEY": "k"}


def test_command_non_zero_exit_reports_status_and_first_stderr_line() -> None:
    code = "import sys; sys.stdin.read(); sys.stderr.write('boom: disk full\\nsecond line\\n'); sys.exit(3)"
    sink = CommandSink(type="command", name="pager", command=[sys.executable, "-c", code])
    with pytest.raises(DeliveryError) as info:
        deliver(sink, ALERT)
    message = info.value.message
    assert message.startswith("command sink 'pager': ")
    assert "exit" in message and "status 3" in message and "boom: disk full" in message
    assert "second line" not in message and "\n" not in message


def test_command_timeout_and_missing_program(tmp_path: Path) -> None:
    # The program would run for an hour, longer than pytest lets a test run: deliver returning with
    # the timeout's error shows the program was killed (deliver waits for it after killing it), not
    # waited for. No wall-clock bound: a busy machine may take seconds to start it.
    slow = CommandSink(type="command", command=[sys.executable, "-c", "import time; time.sleep(3600)"],
                       timeout=0.3)
    with pytest.raises(DeliveryError, match=r"timeout after 0\.3s"):
        deliver(slow, ALERT)
    missing = CommandSink(type="command", command=[str(tmp_path / "no-such-program")])
    with pytest.raises(DeliveryError, match="cannot run"):
        deliver(missing, ALERT)


# --- file ----------------------------------------------------------------------------------------

def test_file_sink_appends_lines_with_private_modes(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "alerts.jsonl"
    sink = FileSink(type="file", path=str(path))
    deliver(sink, ALERT)
    deliver(sink, {"reason": "second", "key": "k2"})
    assert path.read_bytes() == encode(ALERT) + b"\n" + encode({"reason": "second", "key": "k2"}) + b"\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o700


def test_file_sink_os_error(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("")
    with pytest.raises(DeliveryError, match="cannot append to") as info:
        deliver(FileSink(type="file", name="log", path=str(tmp_path / "plain" / "alerts.jsonl")), ALERT)
    assert info.value.sink == "file sink 'log'"


# --- configuration -------------------------------------------------------------------------------

ALERTS_TOML = """\
window_minutes = 15

[[sinks]]
type = "webhook"
name = "ops"
url = "https://alerts.example.org/hook"
headers = { Authorization = "Bearer abc" }
timeout = 5

[[sinks]]
type = "command"
command = ["notify", "--urgent"]

[[sinks]]
type = "file"
path = "logs/alerts.jsonl"
"""


def test_config_from_nbgov_alerts_file(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "alerts.toml"
    path.parent.mkdir()
    path.write_text(ALERTS_TOML)
    loaded = find_alert_config(cwd=tmp_path, environ={"NBGOV_ALERTS": "conf/alerts.toml"})
    assert loaded is not None and loaded.source == str(path)
    config = loaded.config
    assert config.window_minutes == 15
    assert config.sink_names() == ["ops", "command-2", "file-3"]
    webhook_sink, command_sink, file_sink = config.sinks
    assert isinstance(webhook_sink, WebhookSink) and webhook_sink.timeout == 5.0
    assert isinstance(command_sink, CommandSink) and command_sink.timeout == 30.0
    assert isinstance(file_sink, FileSink) and file_sink.path == str(path.parent / "logs" / "alerts.jsonl")


def test_config_from_pyproject_walking_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    (project / "notebooks").mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        "[project]\nname = 'x'\n[tool.nbgov]\nhome = '.ledger'\n[tool.nbgov.alerts]\n"
        "[[tool.nbgov.alerts.sinks]]\ntype = 'file'\npath = 'alerts.jsonl'\n"
        "[[tool.nbgov.alerts.sinks]]\ntype = 'file'\nname = 'copy'\npath = '/var/tmp/a.jsonl'\n"
        "[[tool.nbgov.alerts.sinks]]\ntype = 'webhook'\nurl = 'http://localhost:9/x'\n")
    monkeypatch.chdir(project / "notebooks")
    loaded = find_alert_config()
    assert loaded is not None
    assert loaded.source == f"{project / 'pyproject.toml'} [tool.nbgov.alerts]"
    assert loaded.config.window_minutes == 60
    assert loaded.config.sink_names() == ["file-1", "copy", "webhook-3"]
    assert [getattr(s, "path", None) for s in loaded.config.sinks] == [
        str(project / "alerts.jsonl"), "/var/tmp/a.jsonl", None]
    monkeypatch.setenv("NBGOV_ALERTS", str(tmp_path / "elsewhere.toml"))
    (tmp_path / "elsewhere.toml").write_text("[[sinks]]\ntype = 'command'\ncommand = ['true']\n")
    by_env = find_alert_config()
    assert by_env is not None and by_env.config.sink_names() == ["command-1"]


def test_no_configuration_is_none(tmp_path: Path) -> None:
    assert find_alert_config(cwd=tmp_path, environ={}) is None
    (tmp_path / "pyproject.toml").write_text("[tool.nbgov]\nhome = '.ledger'\n")
    assert find_alert_config(cwd=tmp_path, environ={}) is None


WEBHOOK = "[[sinks]]\ntype = 'webhook'\nurl = 'https://example.org/hook'\n"


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("[[sinks]]\ntype = 'email'\nto = 'a@b'\n", "sinks.0.type", "unknown sink type 'email'"),
        ("[[sinks]]\nurl = 'https://example.org'\n", "sinks.0.type", "required key is missing"),
        (WEBHOOK + "[[sinks]]\ntype = 'webhook'\n", "sinks.1.url", "required key is missing"),
        ("[[sinks]]\ntype = 'webhook'\nurl = 'ftp://example.org/x'\n", "sinks.0.url", "http:// or https://"),
        (WEBHOOK + "retries = 3\n", "sinks.0.retries", "unknown key"),
        ("window = 5\n" + WEBHOOK, "window", "unknown key"),
        ("sinks = []\n", "sinks", "at least 1 item"),
        ("window_minutes = 5\n", "sinks", "required key is missing"),
        ("window_minutes = 0\n" + WEBHOOK, "window_minutes", "greater than or equal to 1, got 0"),
        ("window_minutes = '5'\n" + WEBHOOK, "window_minutes", "valid integer, got '5'"),
        (WEBHOOK + "name = 'ops'\n" + WEBHOOK + "name = 'ops'\n", "sinks", "duplicate sink name 'ops'"),
        (WEBHOOK + WEBHOOK + "name = 'webhook-1'\n", "sinks", "duplicate sink name 'webhook-1'"),
        (WEBHOOK + "timeout = 0\n", "sinks.0.timeout", "greater than 0"),
        ("[[sinks]]\ntype = 'command'\ncommand = []\n", "sinks.0.command", "at least 1 item"),
        ("[[sinks]]\ntype = 'file'\npath = ''\n", "sinks.0.path", "non-empty path"),
        ("sinks = [1]\n", "sinks.0", "must be a table"),
        (WEBHOOK + "headers = { Authorization = 42 }\n", "sinks.0.headers.Authorization", "valid string"),
    ],
)
def test_invalid_configs_name_file_key_and_problem(tmp_path: Path, text: str, key: str, problem: str) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text(text)
    with pytest.raises(AlertConfigError) as info:
        find_alert_config(cwd=tmp_path, environ={"NBGOV_ALERTS": str(path)})
    error = info.value
    assert (error.source, error.key) == (str(path), key), error.message
    assert problem in error.problem, error.problem
    assert error.message.startswith(f"{path}: {key}: ")
    assert "\n" not in error.one_line()


@pytest.mark.parametrize(
    ("content", "problem"),
    [(None, "alerts file not found"), (b"[[sinks]\ntype = 'file'\n", "not valid TOML"), (b"\xff\xfe", "not UTF-8")],
)
def test_unreadable_alerts_files(tmp_path: Path, content: bytes | None, problem: str) -> None:
    path = tmp_path / "alerts.toml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(AlertConfigError) as info:
        find_alert_config(cwd=tmp_path, environ={"NBGOV_ALERTS": str(path)})
    assert (info.value.source, info.value.key) == (str(path), "")
    assert problem in info.value.problem


def test_pyproject_errors_name_the_table(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[tool.nbgov.alerts]\nwindow_minutes = 0\n[[tool.nbgov.alerts.sinks]]\ntype = 'file'\n")
    with pytest.raises(AlertConfigError, match=r"\(and 1 more problem\)") as info:
        find_alert_config(cwd=tmp_path, environ={})
    assert info.value.source == f"{pyproject} [tool.nbgov.alerts]"
    assert info.value.key in ("window_minutes", "sinks.0.path")
    pyproject.write_text("[tool.nbgov]\nalerts = 'yes'\n")
    with pytest.raises(AlertConfigError) as info:
        find_alert_config(cwd=tmp_path, environ={})
    assert (info.value.source, info.value.key, info.value.problem) == (
        str(pyproject), "tool.nbgov.alerts", "must be a table")
    pyproject.write_text("[tool.nbgov\n")
    with pytest.raises(AlertConfigError, match="not valid TOML"):
        find_alert_config(cwd=tmp_path, environ={})


def test_secret_values_are_not_echoed_by_config_errors(tmp_path: Path) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text(WEBHOOK + f"headers = {{ 'Content-Type' = '{TOKEN}' }}\n")
    with pytest.raises(AlertConfigError) as info:
        find_alert_config(cwd=tmp_path, environ={"NBGOV_ALERTS": str(path)})
    assert info.value.key == "sinks.0.headers" and "set by nbgov" in info.value.problem
    for url in (f"ftp://u:{TOKEN}@example.org", f"https://u:{TOKEN}@example.org/hook"):
        path.write_text(f"[[sinks]]\ntype = 'webhook'\nurl = '{url}'\n")
        with pytest.raises(AlertConfigError) as info:
            find_alert_config(cwd=tmp_path, environ={"NBGOV_ALERTS": str(path)})
        assert info.value.key == "sinks.0.url" and TOKEN not in info.value.one_line()
    assert "credentials" in info.value.problem


def test_models_are_frozen_and_strict() -> None:
    config = AlertConfig.model_validate({"sinks": [{"type": "file", "path": "/tmp/x"}]})
    with pytest.raises(ValidationError):
        config.window_minutes = 5  # type: ignore[misc]
    with pytest.raises(ValidationError):
        AlertConfig.model_validate({"sinks": [{"type": "file", "path": "/tmp/x"}], "window_minutes": "5"})
