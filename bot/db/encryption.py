"""Secret values at rest: Fernet encryption with key rotation, and the keys derived from it
(fingerprints, seals)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stat
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr

from bot.logs import SECRETS, get_logger

log = get_logger(__name__)
# HKDF's purpose label for the key that seals requests (bot.approvals.seals): a new label, a
# new key, so no other use of the Fernet key can produce a seal.
SEAL_PURPOSE = b"hook-secret-bot seal v1"


class VaultError(Exception):
    """A stored value cannot be decrypted with any configured key."""


class Vault:
    """Encrypts pending values; the first key encrypts, every key decrypts."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one Fernet key is required")
        SECRETS.pin(*keys)
        self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])
        # The fingerprint key is derived so that it never equals the encryption key.
        self._mac_key = hmac.new(
            keys[0].encode(), b"hook-secret-bot fingerprint", "sha256"
        ).digest()
        # One seal key per Fernet key, newest first: the first seals, every one verifies.
        self.seal_keys = [seal_key(k) for k in keys]

    def encrypt(self, value: SecretStr) -> bytes:
        """Ciphertext for ``value``, which is registered for log redaction."""
        SECRETS.register(value.get_secret_value())
        return self._fernet.encrypt(value.get_secret_value().encode("utf-8"))

    def decrypt(self, token: bytes) -> SecretStr:
        """The value behind ``token``, registered for log redaction."""
        try:
            plain = self._fernet.decrypt(token).decode("utf-8")
        except InvalidToken:
            raise VaultError("no configured key decrypts this value (was a key removed?)") from None
        SECRETS.register(plain)
        return SecretStr(plain)

    def made_by_a_key(self, token: bytes) -> bool:
        """Whether a configured key made ``token`` (its MAC is checked; nothing is decrypted)."""
        try:
            self._fernet.extract_timestamp(token)
        except InvalidToken:
            return False
        return True

    def fingerprint(self, value: SecretStr) -> str:
        """A keyed HMAC prefix to compare out of band; reveals neither value nor length."""
        digest = hmac.new(self._mac_key, value.get_secret_value().encode("utf-8"), hashlib.sha256)
        return digest.hexdigest()[:12]


def derive_key(fernet_key: str, purpose: bytes) -> bytes:
    """A 32-byte key for ``purpose`` (HKDF-SHA256 over the Fernet key's bytes): a different
    purpose gives an unrelated key, and neither reveals the Fernet key."""
    material = base64.urlsafe_b64decode(fernet_key.encode())
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=purpose).derive(material)


def generate_key() -> str:
    """A new Fernet key for HOOK_SECRET_ENCRYPTION_KEY."""
    return Fernet.generate_key().decode()


def key_file_for(database_url: str, configured: Path | None = None) -> Path:
    """Where the generated key lives for a SQLite database: HOOK_SECRET_KEY_FILE when set,
    else beside the database file."""
    if configured is not None:
        return configured
    path = database_url.split("///", 1)[1] if "///" in database_url else ""
    if not path or path == ":memory:":
        return Path("hook-secret-bot.key")
    return Path(path).with_suffix(".key")


def load_or_create_key(path: Path) -> str:
    """Read the key file, or create it once with mode 0600 and warn that it was generated."""
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            log.warning("key file is readable by others; run chmod 600", path=str(path))
        return path.read_text().strip()
    key = generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its key
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    log.warning(
        "generated an encryption key file; set HOOK_SECRET_ENCRYPTION_KEY to manage it yourself",
        path=str(path),
    )
    return key


def seal_key(fernet_key: str) -> bytes:
    """The key that seals requests (bot.approvals.seals), only ever held in memory: the
    database never sees it."""
    return derive_key(fernet_key, SEAL_PURPOSE)
