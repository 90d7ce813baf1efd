"""The third-party test vectors in tests/data/vectors are all there, unchanged, with their licences."""

from __future__ import annotations

import hashlib

from support.helpers import VECTORS


def test_every_vector_file_is_present_and_unchanged() -> None:
    listed = {}
    for line in (VECTORS / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ", 1)
        listed[name] = digest
    present = {p.relative_to(VECTORS).as_posix() for p in VECTORS.rglob("*") if p.is_file()}
    present -= {"SHA256SUMS", "README.md"}
    assert sorted(set(listed) - present) == [], "missing"
    assert sorted(present - set(listed)) == [], "not listed in SHA256SUMS"
    changed = [name for name, digest in listed.items()
               if hashlib.sha256((VECTORS / name).read_bytes()).hexdigest() != digest]
    assert changed == []
    for kind in ("rfc9162", "openlineage"):  # each set keeps its licence and provenance beside it
        assert {f"{kind}/LICENSE", f"{kind}/README.md"} <= set(listed)
        assert "Apache License" in (VECTORS / kind / "LICENSE").read_text()
    assert len(listed) == 562
