"""The keyed audit chain on SQLite and PostgreSQL: a rewrite needs the key, records from before
the keying still verify, and a rotated key keeps its records verifiable."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from bot.db import audit
from bot.db.audit import AuditEvent, AuditSink
from bot.db.audit_chain import ChainKey, ChainKeys, chain_keys
from bot.db.encryption import derive_key, generate_key
from bot.db.store import Store

Seal = Callable[[str, dict[str, Any]], str]
REPO = Path(__file__).resolve().parent.parent


def _store(url: str, keys: ChainKeys | None) -> Store:
    store = Store(url, AuditSink(io.StringIO()), chain=keys)
    store.migrate()
    return store


def _trail(store: Store, first: int, n: int) -> None:
    for i in range(first, first + n):
        store.audit(AuditEvent("request.submitted", actor="U1", request_id=f"r{i}", outcome="ok"))


def _verify(store: Store, keys: ChainKeys | None) -> audit.VerifyResult:
    with store.session() as session:
        return audit.verify(session, keys)


def _body(row: Any) -> dict[str, Any]:
    body = {name: row[name] for name in ("seq", "event", "timestamp", *audit.CORE_FIELDS)}
    body["detail"] = json.loads(row["detail"])
    return body


def _rewrite_and_rehash(connection: Connection, seq: int, seal: Seal) -> None:
    """Change record ``seq``'s actor and recompute its hash and every later one with ``seal``,
    so that every link holds again: what an attacker with write access does."""
    connection.execute(text("UPDATE audit_log SET actor = 'U0FORGER' WHERE seq = :s"), {"s": seq})
    rows = connection.execute(
        text("SELECT * FROM audit_log WHERE seq >= :s ORDER BY seq"), {"s": seq}
    ).all()
    prev = rows[0]._mapping["prev_hash"]
    for row in rows:
        new = seal(prev, _body(row._mapping))
        connection.execute(
            text("UPDATE audit_log SET prev_hash = :p, hash = :h WHERE seq = :s"),
            {"p": prev, "h": new, "s": row._mapping["seq"]},
        )
        prev = new


def test_keyed_records_verify_with_the_key_and_say_what_is_unchecked_without(
    db_url: str,
) -> None:
    """Records sealed with the key carry an ``h1:`` HMAC that fits the column and verifies;
    without the key their links are checked and their HMACs counted as unchecked."""
    keys = ChainKeys([generate_key()])
    store = _store(db_url, keys)
    _trail(store, 1, 4)
    with store.engine.connect() as connection:
        hashes = list(connection.execute(text("SELECT hash FROM audit_log")).scalars())
    assert all(h.startswith(f"h1:{keys.keys[0].kid}:") and len(h) <= 64 for h in hashes)
    result = _verify(store, keys)
    assert (result.broken_at, result.checked, result.keyed, result.unkeyed) == (None, 4, 4, 0)
    blind = _verify(store, None)
    assert (blind.broken_at, blind.checked, blind.unchecked, blind.keyed) == (None, 4, 4, 0)
    store.close()


def test_a_rewritten_and_rehashed_trail_fails_verify(db_url: str) -> None:
    """Rewriting a record and recomputing every later hash, without the key, fails at the
    rewritten record: with plain hashes, with another key, or with the real key's id."""
    real = ChainKeys([generate_key()])
    mine = ChainKeys([generate_key()])
    posing = ChainKeys([generate_key()])
    posing.keys[0] = ChainKey(real.keys[0].kid, posing.keys[0].secret)
    forgeries: dict[str, tuple[Seal, str]] = {
        "plain": (audit.record_hash, "unkeyed after keyed records"),
        "own key": (mine.seal, f"keyed under key id {mine.keys[0].kid}, which none"),
        "real key id": (posing.seal, "content does not match"),
    }
    for seal, problem in forgeries.values():
        store = _store(db_url, real)
        with store.engine.begin() as connection:
            connection.execute(text("DELETE FROM audit_log"))
        _trail(store, 1, 5)
        with store.engine.begin() as connection:
            _rewrite_and_rehash(connection, 3, seal)
        result = _verify(store, real)
        assert result.broken_at == 3 and problem in (result.problem or ""), result
        store.close()


def test_records_from_before_the_keying_still_verify_and_the_chain_continues(
    db_url: str,
) -> None:
    """A trail written unkeyed (before the upgrade) and continued keyed verifies record for
    record, each under its own scheme; the first keyed record links to the last unkeyed one."""
    old = _store(db_url, None)
    _trail(old, 1, 3)
    old.close()
    keys = ChainKeys([generate_key()])
    new = _store(db_url, keys)
    _trail(new, 4, 3)
    result = _verify(new, keys)
    assert (result.broken_at, result.checked, result.unkeyed, result.keyed) == (None, 6, 3, 3)
    with new.engine.connect() as connection:
        rows = connection.execute(text("SELECT hash, prev_hash FROM audit_log ORDER BY seq")).all()
    assert rows[3][1] == rows[2][0] and len(rows[2][0]) == 64 and rows[3][0].startswith("h1:")
    new.close()


def test_records_under_a_rotated_key_still_verify(db_url: str) -> None:
    """After a rotation (new key first, old after it) records sealed under either key verify;
    with the old key dropped, its first record is named, and why."""
    first, second = generate_key(), generate_key()
    before = _store(db_url, ChainKeys([first]))
    _trail(before, 1, 2)
    before.close()
    rotated = ChainKeys([second, first])
    after = _store(db_url, rotated)
    _trail(after, 3, 2)
    result = _verify(after, rotated)
    assert (result.broken_at, result.keyed) == (None, 4)
    dropped = _verify(after, ChainKeys([second]))
    assert dropped.broken_at == 1 and "retired key must stay listed" in (dropped.problem or "")
    after.close()


def test_the_chain_key_is_derived_not_the_encryption_key(sqlite_url: str) -> None:
    """The chain key is HKDF output for its own purpose: stable for a key, different from the
    key and from another purpose's; SQLite's key file is read but never created for verify."""
    key = generate_key()
    derived = derive_key(key, b"hook-secret-bot audit chain v1")
    assert derived == derive_key(key, b"hook-secret-bot audit chain v1") and len(derived) == 32
    assert derived not in (derive_key(key, b"other"), base64.urlsafe_b64decode(key))
    assert chain_keys([], sqlite_url, create=False) is None
    created = chain_keys([], sqlite_url, create=True)
    again = chain_keys([], sqlite_url, create=False)
    assert created is not None and again is not None
    assert created.keys[0].kid == again.keys[0].kid
    assert chain_keys([], "postgresql+psycopg://u@h/db", create=True) is None


def _verify_cli(url: str, key: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m bot audit verify`` as an operator runs it, with the database and the key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AUTH0_", "HOOK_"))}
    env |= {"DATABASE_URL": url, "HOOK_SECRET_ENCRYPTION_KEY": key, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "bot", "audit", "verify"],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def test_verify_reads_a_trail_keyed_after_an_upgrade_and_counts_the_unkeyed_records(
    db_url: str, tmp_path: Path
) -> None:
    """Run as a user runs it: a trail begun unkeyed and continued keyed (then under a rotated
    key) exits 0 and says how many records predate the keying."""
    old = _store(db_url, None)
    _trail(old, 1, 2)
    old.close()
    first, second = generate_key(), generate_key()
    for keys in ([first], [second, first]):
        store = _store(db_url, ChainKeys(keys))
        _trail(store, 3 if len(keys) == 1 else 5, 2)
        store.close()
    result = _verify_cli(db_url, f"{second},{first}", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == (
        "audit trail intact: 6 records (2 of them unkeyed, from before the chain was keyed: "
        "a rewrite of those needs no key)\n"
    )
