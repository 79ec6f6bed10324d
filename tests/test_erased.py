"""Erased means erased: once a decided request's value is erased, no SQLite file holds it."""

from __future__ import annotations

import contextlib
import re
import secrets
import sqlite3
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from bot.db.scrub import WalScrubber
from tests.harness.inprocess import APPROVALS, Bot, running_bot
from tests.waiting import wait_until

# A Fernet token as stored: url-safe base64 of version 0x80 and a timestamp ("gAAAAA...").
TOKEN = re.compile(rb"gAAAAA[A-Za-z0-9_=-]{40,}")
# An erase must be gone from the files within this many seconds (batched checkpoints).
WITHIN = 10.0


def _pending(bot: Bot, name: str, value: str) -> tuple[dict[str, Any], bytes]:
    """Submit a request; its approval message and the value's ciphertext while it is open."""
    ack = bot.submit(bot.open_form(), name=name, value=value)
    assert ack.status == 200 and not ack.body, ack.body
    message = bot.slack.wait_for_message(
        APPROVALS,
        lambda m: (
            f"`{name}`" in m.get("text", "")
            and any(b.get("type") == "actions" for b in m.get("blocks", []))
        ),
    )
    bot.drain()
    request = bot.store.open_request_for(bot.hook_id, name)
    assert request is not None and request.value_ciphertext, name
    return message, request.value_ciphertext


def _files(tmp_path: Path) -> dict[str, bytes]:
    """Every file of the database (the database, ``-wal``, ``-shm``), byte for byte."""
    return {path.name: path.read_bytes() for path in sorted(tmp_path.glob("bot.db*"))}


def _copies(files: dict[str, bytes], needles: list[bytes], vault: MultiFernet) -> list[str]:
    """Where a value, one of its tokens, or any token the key decrypts is found."""
    found = []
    for name, blob in files.items():
        found += [f"{needle[:12]!r} in {name}" for needle in needles if needle in blob]
        for match in TOKEN.finditer(blob):
            try:
                vault.decrypt(match.group())
            except InvalidToken:
                continue
            found.append(f"a token that decrypts in {name}")
    return found


def _eventually_none(tmp_path: Path, needles: list[bytes], vault: MultiFernet) -> list[str]:
    """The copies left once the scrub had ``WITHIN`` seconds (none, when it works)."""
    with contextlib.suppress(AssertionError):  # the copies left are the answer
        wait_until(lambda: not _copies(_files(tmp_path), needles, vault), WITHIN, every=0.1)
    return _copies(_files(tmp_path), needles, vault)


def test_no_sqlite_file_holds_an_erased_value(sqlite_url: str, tmp_path: Path) -> None:
    """Applied, rejected and expired: each value (in clear, as its token, or as anything the
    key decrypts) is gone from bot.db, bot.db-wal and bot.db-shm within seconds."""
    core = f"ERASED-{secrets.token_hex(6)}"
    values = {name: f"{core}-{name}" for name in ("APPLIED", "REJECTED", "EXPIRED")}
    with running_bot(sqlite_url) as bot:
        vault = MultiFernet([Fernet(key) for key in bot.settings.encryption_keys])
        applied, applied_token = _pending(bot, "APPLIED", values["APPLIED"])
        rejected, rejected_token = _pending(bot, "REJECTED", values["REJECTED"])
        _, expired_token = _pending(bot, "EXPIRED", values["EXPIRED"])
        tokens = [applied_token, rejected_token, expired_token]
        # Before any erase, the tokens are in the files: the scan sees them.
        assert _copies(_files(tmp_path), tokens, vault)
        assert bot.decide(applied).status == 200
        assert bot.decide(rejected, approve=False, comment="no").status == 200
        bot.drain()
        bot.clock.advance(bot.settings.hook_secret_request_ttl + 1)
        bot.services.sweep()
        bot.drain()
        assert values["APPLIED"] in bot.auth0.secrets(bot.hook_id).values()
        needles = [value.encode() for value in values.values()] + tokens
        assert _eventually_none(tmp_path, needles, vault) == []
        assert {"bot.db", "bot.db-wal", "bot.db-shm"} <= set(_files(tmp_path))  # all scanned


def test_a_checkpoint_truncates_the_wal(tmp_path: Path) -> None:
    """The scrubber leaves an empty WAL, and several erases share a checkpoint."""
    path = tmp_path / "bot.db"
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE t (v BLOB)")
    connection.execute("INSERT INTO t VALUES (?)", (b"x" * 5000,))
    assert (tmp_path / "bot.db-wal").stat().st_size > 0
    scrubber = WalScrubber(path)
    for _ in range(5):
        scrubber.erased()
    wait_until(lambda: scrubber.checkpoints, WITHIN, what="a checkpoint")
    scrubber.close()
    assert scrubber.checkpoints == 1
    assert (tmp_path / "bot.db-wal").stat().st_size == 0
    connection.close()
