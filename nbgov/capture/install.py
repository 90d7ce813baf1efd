"""Automatic capture: reversible patches on data and ML libraries that report to the recorder.

:class:`Capture` installs everything on load and removes every patch on unload; modules not yet
imported are patched the moment they are. The wrappers do nothing but call the original when no
recorder is active, when nbgov itself is working, or inside another captured call.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from nbgov.capture.boosters import install_boosters
from nbgov.capture.dataio import install_dataio
from nbgov.capture.patching import Patches
from nbgov.capture.persistence import install_persistence
from nbgov.capture.search import install_model_selection
from nbgov.capture.sklearn import install_sklearn

__all__ = ["Capture"]


class Capture:
    """The library patches of one recording session."""

    def __init__(self, namespace: MutableMapping[str, Any]) -> None:
        self.namespace = namespace
        self.patches = Patches()
        self.installed = False

    def install(self) -> None:
        if self.installed:
            return
        install_dataio(self.patches)
        install_sklearn(self.patches, self.namespace)
        install_model_selection(self.patches, self.namespace)
        install_persistence(self.patches, self.namespace)
        install_boosters(self.patches, self.namespace)
        self.patches.rebind(self.namespace)
        self.installed = True

    def uninstall(self) -> None:
        self.patches.undo()
        self.installed = False
