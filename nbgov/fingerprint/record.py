"""The :class:`Fingerprint` every coverage gives (:mod:`nbgov.fingerprint` defines the coverages),
and what a hash must offer to be fed (:class:`Hasher`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Fingerprint", "Hasher"]


@dataclass(frozen=True)
class Fingerprint:
    """What was hashed, how, and the result.

    Attributes
    ----------
    algorithm
        ``"blake3"`` or ``"sha256"`` (``"none"`` when nothing could be hashed).
    digest
        Lower-case hex digest (empty when ``coverage`` is ``"none"``).
    coverage
        What was hashed: ``file``, ``arrow-ipc``, ``ndarray``, ``sparse``, ``bytes``, ``pickle``
        or ``none`` (see the module documentation for each).
    size_bytes
        Number of bytes fed to the hash (the file size for files), or None.
    """

    algorithm: str
    digest: str
    coverage: str
    size_bytes: int | None

    def as_dict(self) -> dict[str, object]:
        """Return the fields as a JSON-ready dict (``Fingerprint(**d)`` rebuilds it)."""
        return {
            "algorithm": self.algorithm,
            "digest": self.digest,
            "coverage": self.coverage,
            "size_bytes": self.size_bytes,
        }


class Hasher(Protocol):
    """A hash being fed: ``blake3.blake3`` or a ``hashlib`` hash."""

    def update(self, data: Any, /) -> object: ...

    def hexdigest(self) -> str: ...
