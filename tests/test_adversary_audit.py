"""Attacks on the keyed audit chain and its witness comparison: a forged record carrying a
copied ``h1:`` hash, a whole trail rewritten with unkeyed hashes, a witness with an extra or
reordered line."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from bot.db import audit
from bot.db.audit_chain import ChainKeys, record_hash
from bot.db.audit_witness import Kind, compare, read_witness
from bot.db.encryption import generate_key
from tests.test_audit_keyed import _rewrite_and_rehash, _store, _trail, _verify


def test_a_forged_record_with_a_copied_keyed_hash_breaks_the_chain(db_url: str) -> None:
    """A forged record can't carry a genuine record's `h1:` hash beside it (the column is
    unique), and a record rewritten in place, keeping its `h1:` hash, does not verify."""
    keys = ChainKeys([generate_key()])
    store = _store(db_url, keys)
    _trail(store, 1, 3)
    with store.engine.connect() as connection:
        last = dict(
            connection.execute(text("SELECT * FROM audit_log WHERE seq = 3")).one()._mapping
        )
    forged = {**last, "seq": 4, "prev_hash": last["hash"], "actor": "U0FORGER"}
    insert = text(
        "INSERT INTO audit_log (seq, timestamp, event, request_id, actor, team_id, hook_id, "
        "secret_name, outcome, detail, prev_hash, hash) VALUES (:seq, :timestamp, :event, "
        ":request_id, :actor, :team_id, :hook_id, :secret_name, :outcome, :detail, "
        ":prev_hash, :hash)"
    )
    with pytest.raises(IntegrityError), store.engine.begin() as connection:
        connection.execute(insert, forged)
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE audit_log SET actor = 'U0FORGER' WHERE seq = 3"))
    result = _verify(store, keys)
    assert result.broken_at == 3 and "does not match" in (result.problem or ""), result
    store.close()


def test_a_whole_trail_rewritten_with_unkeyed_hashes_fails_verify_with_the_key(
    db_url: str,
) -> None:
    """Someone with the database alone rewrites record 1 and rehashes the whole trail with
    the public, unkeyed scheme (as records written before the keying were): with the key
    given, that must not verify as intact."""
    keys = ChainKeys([generate_key()])
    store = _store(db_url, keys)
    _trail(store, 1, 4)
    with store.engine.begin() as connection:
        _rewrite_and_rehash(connection, 1, record_hash)
    result = _verify(store, keys)
    assert result.broken_at == 4 and "rehashed without the key" in (result.problem or ""), result
    store.close()


def test_a_witness_with_an_extra_line_fails_and_reordered_lines_agree(db_url: str) -> None:
    """The witness pairs lines by record id: reordered lines still agree; an extra audit
    line (a record the database lacks) and a second, different copy of a record are both
    reported."""
    keys = ChainKeys([generate_key()])
    store = _store(db_url, keys)
    _trail(store, 1, 3)
    with store.session() as session:
        records = list(audit.export(session))
    printed = [json.dumps(audit.as_printed(r)) for r in records]
    agreed = compare(records, read_witness(reversed(printed)))
    assert (agreed.agreed, agreed.differences) == (3, [])
    extra = {**json.loads(printed[-1]), "id": 4, "request_id": "r-forged"}
    twin = {**json.loads(printed[0]), "actor": "U0FORGER"}
    lines = [*printed, json.dumps(extra), json.dumps(twin)]
    found = compare(records, read_witness(lines))
    assert found.count(Kind.NOT_IN_DATABASE) == 1 and found.count(Kind.CHANGED) == 1, found
    store.close()
