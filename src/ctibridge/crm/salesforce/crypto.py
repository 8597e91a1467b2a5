"""Secrets at rest: AES-256-GCM with a key file in the data directory (mode 0600).

A sealed value is ``v1.<base64url(nonce ‖ ciphertext+tag)>``. The *context* (for example
``"<tenant>:refresh_token"``) is authenticated as associated data, so a value copied to
another tenant or field fails to open just like a tampered one.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ctibridge.errors import ConfigError, CrmAuthError

__all__ = ["KEY_FILE", "TokenBox"]

KEY_FILE = "salesforce-secrets.key"
_PREFIX = "v1."
_NONCE_BYTES = 12
_KEY_BYTES = 32


class TokenBox:
    """Seals and opens short secrets (refresh tokens, client secrets)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != _KEY_BYTES:
            raise ConfigError(f"a secrets key has {_KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "TokenBox(key=<redacted>)"

    @classmethod
    def from_data_dir(cls, data_dir: str | os.PathLike[str]) -> TokenBox:
        """The data directory's key, created on first use (readable by its owner only)."""
        path = Path(data_dir) / KEY_FILE
        if not path.exists():
            _create_key(path)
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise ConfigError(f"{path} is readable by others (mode {mode:o}); chmod 600 it")
        return cls(path.read_bytes())

    def encrypt(self, plaintext: str, *, context: str) -> str:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    def decrypt(self, sealed: str, *, context: str) -> str:
        """The plaintext; :class:`CrmAuthError` if the value was altered, moved or made
        with another key (the connection must then be authorised again)."""
        if not sealed.startswith(_PREFIX):
            raise CrmAuthError("a stored Salesforce secret has an unknown format")
        try:
            raw = base64.urlsafe_b64decode(_padded(sealed[len(_PREFIX) :]))
            plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode())
        except (InvalidTag, ValueError) as exc:
            raise CrmAuthError(
                "a stored Salesforce secret cannot be opened (altered, or another key)"
            ) from exc
        return plain.decode()


def _padded(text: str) -> str:
    return text + "=" * (-len(text) % 4)


def _create_key(path: Path) -> None:
    """Write a new key atomically: a private temporary file, then a hard link that fails
    if another process won the race (its key is then the one used)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(_KEY_BYTES))
        with contextlib.suppress(FileExistsError):
            os.link(temp, path)
    finally:
        temp.unlink(missing_ok=True)
