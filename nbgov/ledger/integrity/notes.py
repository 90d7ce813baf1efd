"""Signed notes and transparency-log checkpoints, as C2SP specifies them.

A *signed note* (c2sp.org/signed-note) is UTF-8 text ending in a newline, a blank line, and one
or more signature lines ``— <key name> <base64(key id || signature)>``. For Ed25519 the key id is
the first four bytes of ``SHA-256(key name || 0x0A || 0x01 || public key)`` and the signature
covers the text, final newline included. A verifier shares its key as the text
``<key name>+<8 hex digits of key id>+<base64(0x01 || public key)>``.

A *checkpoint* (c2sp.org/tlog-checkpoint) is a signed note whose text is the log's origin, its
tree size in decimal and its RFC 9162 root hash in base64, one per line (any further lines are
extensions, which nbgov does not write and ignores when reading). nbgov signs checkpoints under
the ledger's origin, so the key name is the origin.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from nbgov.errors import NoteError

__all__ = [
    "Checkpoint",
    "VerifierKey",
    "checkpoint_text",
    "open_note",
    "parse_checkpoint",
    "sign_note",
    "verifier_key",
]

_ED25519 = b"\x01"
_DASH = "\u2014 "
_MAX_SIGNATURES = 100
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")


def _check_name(name: str) -> None:
    if not name or any(ch.isspace() for ch in name) or "+" in name:
        raise NoteError(f"{name!r} is not a valid key name (non-empty, no spaces, no '+')")


def _key_id(name: str, public_raw: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + _ED25519 + public_raw).digest()[:4]


@dataclass(frozen=True)
class VerifierKey:
    """A trusted Ed25519 key under a name (C2SP verifier key)."""

    name: str
    public_raw: bytes

    @property
    def key_id(self) -> bytes:
        return _key_id(self.name, self.public_raw)

    def text(self) -> str:
        encoded = base64.b64encode(_ED25519 + self.public_raw).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        """Read ``<name>+<hex key id>+<base64(0x01 || key)>``."""
        parts = text.strip().split("+", 2)  # the base64 key may itself contain '+'
        if len(parts) != 3:
            raise NoteError(f"{text.strip()[:60]!r} is not a verifier key (NAME+KEYID+KEY)")
        name, hex_id, encoded = parts
        _check_name(name)
        try:
            raw = base64.b64decode(encoded, validate=True)
            key_id = bytes.fromhex(hex_id)
        except (binascii.Error, ValueError):
            raise NoteError(f"verifier key for {name!r}: bad hex key id or base64 key") from None
        if len(raw) != 33 or raw[:1] != _ED25519:
            raise NoteError(f"verifier key for {name!r}: not an Ed25519 key")
        key = cls(name, raw[1:])
        if len(key_id) != 4 or key.key_id != key_id:
            raise NoteError(f"verifier key for {name!r}: the key id does not match the key")
        return key


def verifier_key(name: str, public_raw: bytes) -> VerifierKey:
    _check_name(name)
    return VerifierKey(name, public_raw)


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("a note's text must end with a newline")
    if "\n\n" in text:
        raise NoteError("a note's text must not contain a blank line")
    if any(ord(ch) < 0x20 and ch != "\n" for ch in text):
        raise NoteError("a note must not contain control characters other than newline")


def sign_note(text: str, name: str, private: Ed25519PrivateKey) -> str:
    """The signed note of *text* by *private* under *name*."""
    _check_name(name)
    _check_text(text)
    public_raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    signature = private.sign(text.encode())
    encoded = base64.b64encode(_key_id(name, public_raw) + signature).decode()
    return f"{text}\n{_DASH}{name} {encoded}\n"


def open_note(note: str, trusted: Iterable[VerifierKey]) -> tuple[str, VerifierKey]:
    """Check *note*; return its text and the trusted key whose signature holds.

    Signatures by keys not in *trusted* are ignored; a trusted key's invalid signature rejects
    the note, as the specification requires.

    Raises
    ------
    NoteError
        The note is malformed, has no signature by a trusted key, or a trusted key's signature
        does not verify.
    """
    if any(ord(ch) < 0x20 and ch != "\n" for ch in note):
        raise NoteError("a note must not contain control characters other than newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("not a signed note (no blank line before the signatures)")
    text, block = note[:split + 1], note[split + 2:]
    if not text or not block.endswith("\n"):
        raise NoteError("not a signed note (empty text, or signatures not ending in a newline)")
    by_id: dict[tuple[str, bytes], VerifierKey] = {(k.name, k.key_id): k for k in trusted}
    lines = block[:-1].split("\n")
    if len(lines) > _MAX_SIGNATURES:
        raise NoteError(f"a note with {len(lines)} signatures (at most {_MAX_SIGNATURES})")
    found: VerifierKey | None = None
    for line in lines:
        if not line.startswith(_DASH):
            raise NoteError(f"malformed signature line {line[:40]!r}")
        name, _, encoded = line[len(_DASH):].rpartition(" ")
        if not name or " " in name:
            raise NoteError(f"malformed signature line {line[:40]!r}")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise NoteError(f"signature by {name!r} is not base64") from None
        if len(raw) < 5:
            raise NoteError(f"signature by {name!r} is too short")
        key = by_id.get((name, raw[:4]))
        if key is None or found is not None:
            continue  # an unknown signer (ignored), or a second signature by one already checked
        if len(raw) != 4 + 64:
            raise NoteError(f"signature by {name!r} has the wrong length for Ed25519")
        try:
            Ed25519PublicKey.from_public_bytes(key.public_raw).verify(raw[4:], text.encode())
        except InvalidSignature:
            raise NoteError(f"the signature by {name!r} (key {key.key_id.hex()}) does not verify") from None
        found = key
    if found is None:
        names = sorted({k.name for k in by_id.values()})
        raise NoteError("the note is not signed by a trusted key"
                        + (f" (trusted: {', '.join(names)})" if names else " (no trusted keys given)"))
    return text, found


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: origin, size and RFC 9162 root."""

    origin: str
    size: int
    root: bytes


def checkpoint_text(origin: str, size: int, root: bytes) -> str:
    _check_name(origin)
    if size < 0 or len(root) != 32:
        raise NoteError("a checkpoint needs a size >= 0 and a 32-byte root")
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


def parse_checkpoint(text: str) -> Checkpoint:
    """Read a checkpoint's text (the note text, its signatures already checked)."""
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "" or not all(lines[:-1]):
        raise NoteError("not a checkpoint (origin, size and root hash lines expected)")
    origin, size_text, root_text = lines[0], lines[1], lines[2]
    if not _DECIMAL.fullmatch(size_text):
        raise NoteError(f"checkpoint size {size_text[:30]!r} is not a decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error:
        root = b""
    if len(root) != 32:
        raise NoteError("checkpoint root is not a base64 32-byte hash")
    return Checkpoint(origin, int(size_text), root)
