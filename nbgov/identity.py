"""Who is acting: the identity stamped on every event, with where it came from."""

from __future__ import annotations

import os
import pwd
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

from nbgov import canonical

__all__ = ["Actor", "hostname", "os_user", "resolve_actor"]


@dataclass(frozen=True)
class Actor:
    """An identity and the source that vouches for it.

    ``source`` is ``"jupyterhub"`` when JupyterHub authenticated the user (``JUPYTERHUB_USER``),
    ``"configured"`` when ``NBGOV_ACTOR`` names a service identity (e.g. a scheduler account),
    and ``"os"`` for the operating-system login, which nothing authenticated beyond the machine.
    """

    id: str
    source: str

    @cached_property
    def encoded(self) -> bytes:
        """Canonical JSON of the actor, as it appears in every event body."""
        return canonical.encode({"id": self.id, "source": self.source}, path="actor")


def resolve_actor(environ: Mapping[str, str] | None = None) -> Actor:
    """Return the acting identity for this process."""
    environ = os.environ if environ is None else environ
    if environ.get("JUPYTERHUB_USER"):
        return Actor(environ["JUPYTERHUB_USER"], "jupyterhub")
    if environ.get("NBGOV_ACTOR"):
        return Actor(environ["NBGOV_ACTOR"], "configured")
    return Actor(os_user(), "os")


def os_user() -> str:
    """The login of this process's user id, from the password database: never from ``USER`` or
    ``LOGNAME``, which anyone can set (``getpass.getuser`` reads them first)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # no passwd entry, e.g. an arbitrary container uid
        return f"uid:{os.getuid()}"


def hostname() -> str:
    return socket.gethostname() or "localhost"
