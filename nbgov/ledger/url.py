"""Team ledger URLs (``ducklake:postgres:<libpq keywords>;data=<path>``), parsed without
importing DuckDB (settings are resolved on every import of nbgov). See :mod:`nbgov.ledger.ducklake`."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from nbgov.errors import ConfigError

__all__ = ["URL_PREFIX", "LakeLocation", "parse_ledger_url"]

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
