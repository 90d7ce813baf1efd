"""Per-user Ed25519 signing keys for approvals.

Each user has one private key in their own key directory (setting ``key_dir``, default
``~/.nbgov/keys``; the directory 0700, the key file 0600, encrypted when ``NBGOV_KEY_PASSPHRASE``
is set). The public half is registered in the ledger (a ``key_registered`` event by that user), so
anyone holding the ledger can verify an approval later without access to the signer's machine.

A signature covers the canonical JSON (RFC 8785) of a statement; the key id is the SHA-256 of the
raw 32-byte public key.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from nbgov import canonical
from nbgov.errors import SigningKeyError

__all__ = ["ALGORITHM", "SigningKey", "key_id", "load_or_create_key", "verify"]

ALGORITHM = "ed25519"
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def key_id(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()


@dataclass(frozen=True)
class SigningKey:
    """A user's private key, loaded."""

    private: Ed25519PrivateKey
    path: Path

    @property
    def public_raw(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def public_hex(self) -> str:
        return self.public_raw.hex()

    @property
    def id(self) -> str:
        return key_id(self.public_raw)

    def sign(self, statement: dict[str, Any]) -> str:
        """Sign the canonical JSON of *statement*; return the signature in base64."""
        message = canonical.encode(statement, path="statement")
        return base64.b64encode(self.private.sign(message)).decode("ascii")


def key_path(key_dir: Path, user: str) -> Path:
    """Where *user*'s key lives (names are made file-safe; a hash keeps them distinct)."""
    safe = _SAFE.sub("_", user)
    if safe != user:
        safe = f"{safe}-{hashlib.sha256(user.encode()).hexdigest()[:8]}"
    return key_dir / f"{safe}.ed25519.pem"


def load_or_create_key(key_dir: Path, user: str, *, create: bool = True) -> SigningKey:
    """Load *user*'s signing key, creating it on first use.

    Raises
    ------
    SigningKeyError
        The key file is unreadable, not an Ed25519 key, or (with *create* false) missing.
    """
    path = key_path(key_dir, user)
    passphrase = os.environ.get("NBGOV_KEY_PASSPHRASE")
    secret = passphrase.encode() if passphrase else None
    if path.exists():
        try:
            data = path.read_bytes()
            private = serialization.load_pem_private_key(data, password=secret)
        except OSError as exc:
            raise SigningKeyError(f"{path}: cannot read the signing key ({exc.strerror})") from None
        except (ValueError, TypeError) as exc:
            raise SigningKeyError(
                f"{path}: not a usable signing key ({exc})",
                hint="set NBGOV_KEY_PASSPHRASE if the key is encrypted",
            ) from None
        if not isinstance(private, Ed25519PrivateKey):
            raise SigningKeyError(f"{path}: not an Ed25519 key")
        return SigningKey(private, path)
    if not create:
        raise SigningKeyError(f"no signing key for {user!r} at {path}")
    private = Ed25519PrivateKey.generate()
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(secret) if secret else serialization.NoEncryption())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    try:
        key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # O_EXCL: two processes creating the same user's key at once must not both win.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_or_create_key(key_dir, user, create=False)
    except OSError as exc:
        raise SigningKeyError(f"{path}: cannot create a signing key ({exc.strerror})",
                              hint="set NBGOV_KEY_DIR to a directory you own") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
        fh.flush()
        os.fsync(fh.fileno())
    return SigningKey(private, path)


def verify(public_hex: str, statement: Any, signature: str) -> bool:
    """True if *signature* (base64) is the key's signature of *statement*'s canonical JSON."""
    try:
        public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))
        raw = base64.b64decode(signature, validate=True)
        public.verify(raw, canonical.encode(statement, path="statement"))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True
