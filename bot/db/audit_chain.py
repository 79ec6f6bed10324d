"""How an audit record's hash is made and checked: plain SHA-256 (records written before the
chain was keyed) or an HMAC under a key derived from HOOK_SECRET_ENCRYPTION_KEY."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from bot.db.encryption import derive_key, key_file_for, load_or_create_key

GENESIS = "0" * 64
# A keyed hash reads "h1:<key id>:<HMAC-SHA256, base64url>" (55 characters: it fits the
# 64-character column, so no migration); a plain one is 64 hex digits, never with a colon.
KEYED = "h1:"
PURPOSE = b"hook-secret-bot audit chain v1"


def canonical(record: dict[str, Any]) -> bytes:
    """The byte form that is hashed: sorted keys, no whitespace, UTF-8."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(prev_hash: str, body: dict[str, Any]) -> str:
    """The plain (unkeyed) hash of a record's content together with the previous record's hash:
    anyone can compute it, so it shows accidents but not a rewrite."""
    return hashlib.sha256(prev_hash.encode() + canonical(body)).hexdigest()


@dataclass(frozen=True)
class ChainKey:
    """One derived chain key and its public id (which key sealed a record)."""

    kid: str
    secret: bytes = field(repr=False)

    @classmethod
    def from_fernet(cls, fernet_key: str) -> ChainKey:
        """The chain key derived from one Fernet key."""
        secret = derive_key(fernet_key, PURPOSE)
        return cls(hmac.new(secret, b"key id", hashlib.sha256).hexdigest()[:8], secret)

    def mac(self, prev_hash: str, body: dict[str, Any]) -> str:
        """The record's HMAC, base64url without padding."""
        digest = hmac.new(self.secret, prev_hash.encode() + canonical(body), hashlib.sha256)
        return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


class ChainKeys:
    """The chain keys, newest first: the first seals new records, each checks its own."""

    def __init__(self, fernet_keys: Sequence[str]) -> None:
        if not fernet_keys:
            raise ValueError("at least one Fernet key is required")
        self.keys = [ChainKey.from_fernet(key) for key in fernet_keys]
        self._by_kid = {key.kid: key for key in reversed(self.keys)}

    def seal(self, prev_hash: str, body: dict[str, Any]) -> str:
        """The keyed hash of a new record, under the newest key."""
        key = self.keys[0]
        return f"{KEYED}{key.kid}:{key.mac(prev_hash, body)}"

    def key_for(self, kid: str) -> ChainKey | None:
        """The configured key with this id, if any."""
        return self._by_kid.get(kid)


class Check(Enum):
    """What checking one record's stored hash found."""

    PLAIN = "plain"  # a matching unkeyed hash
    KEYED = "keyed"  # a matching HMAC under a configured key
    BAD = "bad"  # the hash does not match the content
    NO_KEY = "no key"  # keyed, and no key was given to check it
    UNKNOWN_KEY = "unknown key"  # keyed under a key id none of the given keys has


def is_keyed(stored: str) -> bool:
    """Whether a stored hash is an HMAC (else the plain hash of the unkeyed scheme)."""
    return stored.startswith(KEYED)


def key_id(stored: str) -> str:
    """The key id of a keyed hash."""
    return stored[len(KEYED) :].partition(":")[0]


def check(stored: str, prev_hash: str, body: dict[str, Any], keys: ChainKeys | None) -> Check:
    """Check a record's stored hash under the scheme it names."""
    if not is_keyed(stored):
        plain = hmac.compare_digest(stored.encode(), record_hash(prev_hash, body).encode())
        return Check.PLAIN if plain else Check.BAD
    if keys is None:
        return Check.NO_KEY
    kid, _, mac = stored[len(KEYED) :].partition(":")
    key = keys.key_for(kid)
    if key is None:
        return Check.UNKNOWN_KEY
    keyed = hmac.compare_digest(mac.encode(), key.mac(prev_hash, body).encode())
    return Check.KEYED if keyed else Check.BAD


def chain_keys(
    fernet_keys: Sequence[str],
    database_url: str,
    *,
    create: bool,
    key_file: Path | None = None,
) -> ChainKeys | None:
    """The chain keys from HOOK_SECRET_ENCRYPTION_KEY, else (SQLite) from the generated key
    file, created only if ``create``; None when there is no key to be had."""
    if fernet_keys:
        return ChainKeys(fernet_keys)
    if not database_url.startswith("sqlite"):
        return None
    path = key_file_for(database_url, key_file)
    if not create and not path.is_file():
        return None
    return ChainKeys([load_or_create_key(path)])
