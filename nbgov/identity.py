"""Who is acting: the identity stamped on every event, with where it came from."""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

from nbgov import canonical

__all__ = ["Actor", "resolve_actor", "hostname"]


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
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. an arbitrary container uid
        user = f"uid:{os.getuid()}"
    return Actor(user, "os")


def hostname() -> str:
    return socket.gethostname() or "localhost"
