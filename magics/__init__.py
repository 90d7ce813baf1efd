"""IPython integration for nbgov (installed as ``nbgov.magics``).

``%load_ext nbgov`` starts a recording session on the shell: cell hooks, library capture and the
magics ``%nbgov``, ``%%nbgov`` and ``%%nbgov_sql``. ``%unload_ext nbgov`` removes every hook,
patch and magic it installed and ends the session. Loading twice does nothing the second time.

The magics are adapters: they parse their input, make one call into the nbgov core and render the
result.
"""

from __future__ import annotations

from typing import Any

from nbgov.magics.commands import NbgovMagics
from nbgov.magics.session import NotebookSession

__all__ = ["NotebookSession", "load_ipython_extension", "unload_ipython_extension"]

_ATTRIBUTE = "_nbgov_session"


def load_ipython_extension(shell: Any) -> None:
    if getattr(shell, _ATTRIBUTE, None) is not None:
        return
    session = NotebookSession(shell)
    session.start(NbgovMagics)
    setattr(shell, _ATTRIBUTE, session)


def unload_ipython_extension(shell: Any) -> None:
    session = getattr(shell, _ATTRIBUTE, None)
    if session is None:
        return
    try:
        session.stop("unload")
    finally:
        setattr(shell, _ATTRIBUTE, None)
