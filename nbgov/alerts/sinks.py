"""Alert sinks of the review scheduler: where alerts are configured and how each one is delivered.

Where the configuration comes from, first match wins:

1. ``NBGOV_ALERTS`` (a TOML file with a top-level ``window_minutes`` and ``[[sinks]]`` tables);
2. the ``[tool.nbgov.alerts]`` table of the nearest ``pyproject.toml``;
3. nowhere: :func:`find_alert_config` returns None and nothing is alerted.

::

    window_minutes = 60              # the scheduler's alert window

    [[sinks]]
    type = "webhook"                 # POST the alert as JSON
    name = "ops"                     # optional; default "<type>-<position from 1>"
    url = "https://alerts.example.org/hook"
    headers = { Authorization = "Bearer ..." }
    timeout = 10

    [[sinks]]
    type = "command"                 # run argv (no shell), the alert as JSON on stdin
    command = ["notify-review", "--urgent"]
    timeout = 30

    [[sinks]]
    type = "file"                    # append one JSON line per alert
    path = "alerts.jsonl"            # relative to the configuration file's directory

A configured file that is missing, not TOML or not valid is an :class:`AlertConfigError` naming
the file, the dotted key (``sinks.0.url``: positions count from 0, as in policy errors) and the
problem; nbgov never runs without the alerts it was asked to send. :func:`deliver` makes one
attempt at one sink and raises :class:`DeliveryError` when it fails; deduplication, recording and
retries belong to the caller.

Header values often hold tokens, so they never appear in reprs, validation errors or delivery
errors; webhook URLs are shown without their query string.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import signal
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from nbgov import canonical
from nbgov.config_files import pyproject_table, read_toml, validate_table
from nbgov.errors import AlertConfigError, DeliveryError
from nbgov.settings import find_pyproject

__all__ = [
    "AlertConfig",
    "AnySink",
    "CommandSink",
    "FileSink",
    "LoadedAlerts",
    "Sink",
    "WebhookSink",
    "deliver",
    "find_alert_config",
]

_ENV = "NBGOV_ALERTS"
_TABLE = "tool.nbgov.alerts"
_SINK_TYPES = ("webhook", "command", "file")
# Keys whose values may be secrets: validation errors name them but never echo what they hold.
_SECRET_KEYS = frozenset({"headers", "url"})
# RFC 9110 field-name token; values may not break the header block.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_NBGOV_HEADERS = frozenset({"content-type", "content-length"})
_ENV_FROM_ALERT = {"NBGOV_ALERT_REASON": "reason", "NBGOV_ALERT_JOB": "job", "NBGOV_ALERT_KEY": "key"}

Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Name = Annotated[str, Field(min_length=1)]


class _Model(BaseModel):
    # hide_input_in_errors: a ValidationError's text must not echo a header value.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, hide_input_in_errors=True)


class WebhookSink(_Model):
    """POST each alert as canonical JSON to an http(s) URL."""

    type: Literal["webhook"]
    name: Name | None = None
    url: str
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    """Sent with every request; values (tokens) are never shown."""
    timeout: Seconds = 10

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urllib.parse.urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if parts.username is not None or parts.password is not None:
            # urllib would take them for part of the host name; tokens belong in `headers`.
            raise ValueError("must not hold credentials: send them in headers (e.g. Authorization)")
        return value

    @field_validator("headers")
    @classmethod
    def _valid_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid header name")
            if name.lower() in _NBGOV_HEADERS:
                raise ValueError(f"{name} is set by nbgov (application/json)")
            if any(char in text for char in "\r\n\0"):
                raise ValueError(f"the value of header {name} holds a line break or NUL")
        return value


class CommandSink(_Model):
    """Run a command (no shell) with each alert as JSON on stdin."""

    type: Literal["command"]
    name: Name | None = None
    command: Annotated[list[str], Field(min_length=1)]
    timeout: Seconds = 30

    @field_validator("command")
    @classmethod
    def _program(cls, value: list[str]) -> list[str]:
        if not value[0]:
            raise ValueError("the program (first item) must be non-empty")
        return value


class FileSink(_Model):
    """Append each alert as one canonical JSON line to a file."""

    type: Literal["file"]
    name: Name | None = None
    path: str

    @field_validator("path")
    @classmethod
    def _resolve(cls, value: str, info: ValidationInfo) -> str:
        if not value:
            raise ValueError("must be a non-empty path")
        path = Path(value).expanduser()
        base = (info.context or {}).get("base_dir")
        # Relative to the configuration file, not to wherever the scheduler happens to run.
        return str(base / path) if base is not None and not path.is_absolute() else str(path)


AnySink = WebhookSink | CommandSink | FileSink
"""Any one sink (what :func:`deliver` takes); :data:`Sink` is the same, tagged by ``type`` for parsing."""
Sink = Annotated[AnySink, Field(discriminator="type")]


def _names(sinks: list[AnySink]) -> list[str]:
    return [sink.name or f"{sink.type}-{index}" for index, sink in enumerate(sinks, start=1)]


class AlertConfig(_Model):
    """Validated alert configuration: at least one sink and the scheduler's alert window."""

    sinks: Annotated[list[Sink], Field(min_length=1)]
    window_minutes: Annotated[int, Field(ge=1)] = 60

    @field_validator("sinks")
    @classmethod
    def _unique_names(cls, value: list[AnySink]) -> list[AnySink]:
        names = _names(value)
        for position, name in enumerate(names):
            if name in names[:position]:
                first = names.index(name)
                raise ValueError(f"duplicate sink name {name!r} (sinks {first} and {position})")
        return value

    def sink_names(self) -> list[str]:
        """Each sink's name, or ``<type>-<position from 1>`` for a sink without one."""
        return _names(list(self.sinks))


@dataclass(frozen=True)
class LoadedAlerts:
    """An alert configuration with where it came from."""

    config: AlertConfig
    source: str


def find_alert_config(
    *, cwd: Path | None = None, environ: Mapping[str, str] | None = None
) -> LoadedAlerts | None:
    """Read and validate the alert configuration in force, or return None when there is none.

    Parameters
    ----------
    cwd
        Where to start looking for ``pyproject.toml``, and what a relative ``NBGOV_ALERTS`` is
        relative to (default: the current directory).
    environ
        The environment (default: ``os.environ``).

    Raises
    ------
    AlertConfigError
        The configured file is missing, unreadable, not TOML, or not a valid configuration.
    """
    cwd = Path.cwd() if cwd is None else cwd
    environ = os.environ if environ is None else environ
    if environ.get(_ENV):
        path = Path(environ[_ENV]).expanduser()
        path = path if path.is_absolute() else cwd / path
        return LoadedAlerts(_validate(_read_toml(path, str(path)), str(path), path.parent), str(path))
    pyproject = find_pyproject(cwd)
    if pyproject is None:
        return None
    table = pyproject_table(pyproject, _TABLE, AlertConfigError)
    if table is None:
        return None
    source = f"{pyproject} [{_TABLE}]"
    return LoadedAlerts(_validate(table, source, pyproject.parent), source)


def _read_toml(path: Path, source: str) -> dict[str, Any]:
    return read_toml(path, source, AlertConfigError, "alerts file")[1]


def _validate(table: Mapping[str, Any], source: str, base_dir: Path) -> AlertConfig:
    """Validate a parsed table; raise :class:`AlertConfigError` for the first problem."""
    return validate_table(AlertConfig, table, source, AlertConfigError, context={"base_dir": base_dir},
                          secret_keys=_SECRET_KEYS, locate=_file_location, explain=_explain)


def _file_location(loc: list[Any]) -> list[Any]:
    # A discriminated union puts the tag in the path (sinks.0.webhook.url); the file has no such key.
    if len(loc) > 2 and loc[0] == "sinks" and loc[2] in _SINK_TYPES:
        del loc[2]
    return loc


def _explain(error: dict[str, Any], key: str) -> tuple[str, str] | None:
    if error["type"] == "union_tag_not_found":
        return f"{key}.type", "required key is missing (one of webhook, command, file)"
    if error["type"] == "union_tag_invalid":
        return f"{key}.type", f"unknown sink type {error['ctx']['tag']!r} (expected webhook, command or file)"
    return None


def deliver(sink: AnySink, alert: Mapping[str, Any]) -> None:
    """Make one attempt to deliver *alert* to *sink*.

    Raises
    ------
    DeliveryError
        The sink did not take the alert: an HTTP status of 300 or more, a connection error or
        timeout, a non-zero exit status, or an operating system error writing the file.
    nbgov.errors.InvalidPayload
        The alert cannot be encoded as canonical JSON (retrying will not help).
    """
    body = canonical.encode(dict(alert), path="alert")
    if isinstance(sink, WebhookSink):
        _post(sink, body)
    elif isinstance(sink, CommandSink):
        _run(sink, body, alert)
    else:
        _append(sink, body)


def _label(sink: AnySink) -> str:
    return f"{sink.type} sink {sink.name!r}" if sink.name else f"{sink.type} sink"


def _shown_url(url: str) -> str:
    """The URL without query or fragment, where tokens tend to hide (credentials are refused)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib would turn a redirected POST into a GET, drop the alert and forward the headers
    # (tokens) to wherever the redirect points: a redirect is a failed delivery instead.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _post(sink: WebhookSink, body: bytes) -> None:
    label, url = _label(sink), _shown_url(sink.url)
    request = urllib.request.Request(
        sink.url, data=body, method="POST", headers={**sink.headers, "Content-Type": "application/json"})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=sink.timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        exc.close()
        raise DeliveryError(label, f"HTTP {exc.code} from {url}") from None
    except (TimeoutError, urllib.error.URLError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(reason, TimeoutError):
            raise DeliveryError(label, f"timeout after {sink.timeout:g}s from {url}") from None
        raise DeliveryError(label, f"cannot reach {url} ({reason})") from None
    except (OSError, http.client.HTTPException) as exc:
        raise DeliveryError(label, f"connection to {url} failed ({type(exc).__name__}: {exc})") from None
    if status >= 300:  # pragma: no cover - urllib raises HTTPError for these
        raise DeliveryError(label, f"HTTP {status} from {url}")


def _run(sink: CommandSink, body: bytes, alert: Mapping[str, Any]) -> None:
    label, program = _label(sink), sink.command[0]
    env = {name: value for name, value in os.environ.items() if name not in _ENV_FROM_ALERT}
    env.update({name: str(alert[field]) for name, field in _ENV_FROM_ALERT.items()
                if alert.get(field) is not None})
    try:
        # A session of its own, so a timeout kills what the command started too.
        with subprocess.Popen(sink.command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, env=env, start_new_session=True) as process:
            try:
                _, stderr = process.communicate(body, timeout=sink.timeout)
            except BaseException:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                raise
    except subprocess.TimeoutExpired:
        raise DeliveryError(label, f"timeout after {sink.timeout:g}s running {program}") from None
    except (OSError, ValueError) as exc:
        raise DeliveryError(label, f"cannot run {program} ({exc})") from None
    if process.returncode == 0:
        return
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    said = f": {lines[0].strip()[:200]}" if lines else ""
    if process.returncode < 0:
        raise DeliveryError(label, f"{program} was killed by signal {-process.returncode}{said}")
    raise DeliveryError(label, f"{program} exited with status {process.returncode}{said}")


def _append(sink: FileSink, body: bytes) -> None:
    path = Path(sink.path)
    line = body + b"\n"
    try:
        _make_private_directories(path.parent)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            created = True
        except FileExistsError:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
            created = False
        try:
            written = 0
            while written < len(line):
                written += os.write(fd, line[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            _fsync_directory(path.parent)  # so the new file's entry survives a crash too
    except OSError as exc:
        raise DeliveryError(_label(sink), f"cannot append to {path} ({exc.strerror or exc})") from None


def _make_private_directories(directory: Path) -> None:
    # Path.mkdir(parents=True) gives the parents default permissions; every new level gets 0700.
    missing: list[Path] = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for level in reversed(missing):
        with contextlib.suppress(FileExistsError):
            level.mkdir(mode=0o700)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
