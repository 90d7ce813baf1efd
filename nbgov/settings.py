"""Settings, resolved as: explicit argument > ``NBGOV_*`` environment variable >
``[tool.nbgov]`` in the nearest ``pyproject.toml`` > default.

Every setting is declared once in :data:`SETTINGS`; the CLI, the docs test and ``nbgov status``
read that table. An invalid value is a :class:`~nbgov.errors.ConfigError` naming where it came
from; nbgov never falls back to a default silently.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbgov.errors import ConfigError

__all__ = [
    "SETTINGS",
    "URL_PREFIX",
    "LakeLocation",
    "Setting",
    "Settings",
    "find_pyproject",
    "parse_ledger_url",
    "resolve_settings",
]


def _parse_path(value: Any) -> Path:
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise ValueError("expected a non-empty path")
    return Path(value).expanduser()


def _parse_choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return str(value)

    return parse


def _parse_seconds(*, allow_zero: bool) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        if isinstance(value, bool):
            raise ValueError("expected a number of seconds")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError("expected a number of seconds") from None
        if not (0 <= number if allow_zero else 0 < number) or number == float("inf"):
            raise ValueError(f"expected {'zero or ' if allow_zero else ''}a positive number of seconds")
        return number

    return parse


def _parse_ledger(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError("expected a ledger URL (ducklake:postgres:<connection>;data=<path>)")
    try:
        return parse_ledger_url(value).url
    except ConfigError as exc:
        raise ValueError(exc.message) from None


def _parse_positive_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a positive integer")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError("expected a positive integer") from None
    if number <= 0 or (isinstance(value, float) and value != number):
        raise ValueError("expected a positive integer")
    return number


@dataclass(frozen=True)
class Setting:
    """One declared setting."""

    name: str
    parse: Callable[[Any], Any]
    default: Any
    help: str

    @property
    def env(self) -> str:
        return "NBGOV_" + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "home",
        _parse_path,
        Path(".nbgov"),
        "Directory holding the ledger (ledger.duckdb), the spool and artifacts.",
    ),
    Setting(
        "ledger",
        _parse_ledger,
        None,
        "Where the ledger's tables live: unset for the embedded DuckDB file in home, or a team "
        "ledger URL ducklake:postgres:<libpq connection>;data=<shared path> (DuckLake on "
        "PostgreSQL; the spool stays in home on each host).",
    ),
    Setting(
        "durability",
        _parse_choice("flush", "fsync"),
        "flush",
        "flush: each spool line reaches the OS at once (survives a killed process) and is fsynced "
        "at batch, session and run boundaries; fsync: every line is fsynced (survives power loss, "
        "~1.6 ms per event).",
    ),
    Setting(
        "lock_timeout",
        _parse_seconds(allow_zero=False),
        30.0,
        "Seconds to retry while another process holds the ledger file before failing with "
        "LedgerLocked.",
    ),
    Setting(
        "flush_interval",
        _parse_seconds(allow_zero=True),
        5.0,
        "Seconds between background ingests in a recording kernel (0: only on queries and at "
        "the end of the session).",
    ),
    Setting(
        "ingest_batch_events",
        _parse_positive_int,
        122_880,
        "Most events moved from the spool into DuckDB in one transaction. The default is one "
        "DuckDB row group: larger inserts are written straight to the database file in whole "
        "row groups instead of through the write-ahead log.",
    ),
    Setting(
        "checkpoint_interval",
        _parse_seconds(allow_zero=True),
        3600.0,
        "Seconds after which any ingest cuts a signed checkpoint when something was recorded "
        "since the last one (0: only at the end of sessions and review runs, and on request).",
    ),
    Setting(
        "key_dir",
        _parse_path,
        Path("~/.nbgov/keys"),
        "Directory holding each user's Ed25519 approval-signing key (created 0700, keys 0600); "
        "per user, never inside a shared ledger directory.",
    ),
)

_BY_NAME = {s.name: s for s in SETTINGS}
# Sub-tables of [tool.nbgov] owned by other parts of nbgov (validated there, not here).
_SUBTABLES = frozenset({"policy", "alerts"})


@dataclass(frozen=True)
class Settings:
    """Resolved settings plus where each value came from."""

    home: Path
    ledger: str | None
    durability: str
    lock_timeout: float
    flush_interval: float
    ingest_batch_events: int
    checkpoint_interval: float
    key_dir: Path
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    pyproject: Path | None = field(default=None, compare=False)

    @property
    def ledger_path(self) -> Path:
        return self.home / "ledger.duckdb"

    @property
    def spool_dir(self) -> Path:
        return self.home / "spool"


def find_pyproject(start: Path) -> Path | None:
    """Return the nearest ``pyproject.toml`` at or above *start*, or None."""
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def _read_tool_table(pyproject: Path) -> dict[str, Any]:
    try:
        with pyproject.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{pyproject}: not valid TOML ({exc})", source=str(pyproject), key="tool.nbgov"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"{pyproject}: cannot be read ({exc.strerror})", source=str(pyproject), key="tool.nbgov"
        ) from None
    table = data.get("tool", {}).get("nbgov", {})
    if not isinstance(table, dict):
        raise ConfigError(
            f"{pyproject}: [tool.nbgov] must be a table", source=str(pyproject), key="tool.nbgov"
        )
    return table


def resolve_settings(
    explicit: Mapping[str, Any] | None = None,
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve every setting.

    Parameters
    ----------
    explicit
        Values given directly (function arguments, CLI options); ``None`` values are ignored.
    cwd
        Where to start looking for ``pyproject.toml`` and what relative paths are relative to
        (default: the current directory).
    environ
        The environment (default: ``os.environ``).

    Examples
    --------
    >>> resolve_settings({"home": "/tmp/ledger"}).home
    PosixPath('/tmp/ledger')
    """
    cwd = Path.cwd() if cwd is None else cwd
    environ = os.environ if environ is None else environ
    explicit = {k: v for k, v in (explicit or {}).items() if v is not None}
    unknown = set(explicit) - set(_BY_NAME)
    if unknown:
        raise ConfigError(
            f"unknown setting(s): {', '.join(sorted(unknown))}",
            source="argument",
            key=sorted(unknown)[0],
            hint="valid settings: " + ", ".join(_BY_NAME),
        )

    pyproject = find_pyproject(cwd)
    table = _read_tool_table(pyproject) if pyproject else {}
    for key in table:
        if key not in _BY_NAME and key not in _SUBTABLES:
            raise ConfigError(
                f"{pyproject}: unknown key tool.nbgov.{key}",
                source=str(pyproject),
                key=key,
                hint="valid keys: " + ", ".join(_BY_NAME),
            )

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for setting in SETTINGS:
        if setting.name in explicit:
            raw, source, base = explicit[setting.name], "argument", cwd
        elif setting.env in environ:
            raw, source, base = environ[setting.env], f"environment {setting.env}", cwd
        elif setting.name in table:
            assert pyproject is not None
            raw, source, base = table[setting.name], f"{pyproject} [tool.nbgov]", pyproject.parent
        else:
            raw, source, base = setting.default, "default", cwd
        try:
            value = setting.parse(raw)
        except ValueError as exc:
            # A ledger URL may carry a secret by mistake: never echo it.
            shown = "" if setting.name == "ledger" else f" {raw!r}"
            raise ConfigError(
                f"{source}: invalid value{shown} for {setting.name}: {exc}",
                source=source,
                key=setting.name,
            ) from None
        if isinstance(value, Path) and not value.is_absolute():
            value = base / value
        values[setting.name] = value
        sources[setting.name] = source
    return Settings(**values, sources=sources, pyproject=pyproject)


# --- team ledger URLs (``ducklake:postgres:<libpq keywords>;data=<path>``) -------------------
# Parsed here, without importing DuckDB: the ledger setting is validated with every other setting.

URL_PREFIX = "ducklake:postgres:"
_KEYWORD = re.compile(r"([A-Za-z_]+)\s*=\s*('(?:[^'\\]|\\.)*'|\S*)")
_SECRET_KEYS = {"password", "passfile_contents", "sslpassword"}


@dataclass(frozen=True)
class LakeLocation:
    """Where a team ledger lives: a libpq connection string and the shared data path."""

    conninfo: str
    data_path: str

    @property
    def url(self) -> str:
        return f"{URL_PREFIX}{self.conninfo};data={self.data_path}"

    def lock_key(self) -> int:
        """The advisory lock key serialising this ledger's ingesters (a signed 64-bit int)."""
        digest = hashlib.sha256(f"nbgov ingest {self.data_path}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)


def parse_ledger_url(url: str) -> LakeLocation:
    """Read ``ducklake:postgres:<libpq keywords>;data=<path>``.

    Raises
    ------
    ConfigError
        Not such a URL, no ``data=``, a password inside it, or a data path that is not an
        absolute directory path.
    """
    if not url.startswith(URL_PREFIX):
        raise ConfigError(f"ledger URL {url[:40]!r} is not {URL_PREFIX}<connection>;data=<path>",
                          source="ledger", key="ledger")
    body = url[len(URL_PREFIX):]
    conninfo, _, options = body.partition(";")
    found = dict(_KEYWORD.findall(conninfo))
    if _SECRET_KEYS & {k.lower() for k in found}:
        raise ConfigError("the ledger URL must not hold a password: use PGPASSWORD, ~/.pgpass or a "
                          "libpq service file", source="ledger", key="ledger")
    if not found:
        raise ConfigError("the ledger URL has no PostgreSQL connection keywords (e.g. dbname=nbgov "
                          "host=db)", source="ledger", key="ledger")
    data = ""
    for option in filter(None, (part.strip() for part in options.split(";"))):
        name, sep, value = option.partition("=")
        if not sep or name.strip() != "data":
            raise ConfigError(f"unknown ledger URL option {option[:30]!r} (only data=PATH)",
                              source="ledger", key="ledger")
        data = value.strip()
    if not data:
        raise ConfigError("the ledger URL needs data=PATH, the directory every host shares",
                          source="ledger", key="ledger")
    if "'" in data:
        raise ConfigError("the data path must not contain a quote", source="ledger", key="ledger")
    if "://" in data:
        raise ConfigError("object storage data paths are not supported yet: use a directory every "
                          "host mounts at the same path", source="ledger", key="ledger")
    if not data.startswith("/"):
        raise ConfigError(f"the data path {data[:60]!r} must be absolute: every host mounts it at the "
                          "same path", source="ledger", key="ledger")
    if not data.endswith("/"):
        data += "/"
    return LakeLocation(conninfo.strip(), data)
