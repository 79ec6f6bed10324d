"""``hook-secret-bot audit verify`` and ``audit export`` run as operators run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.orm import Session

from bot.db import audit
from bot.db.audit_chain import ChainKeys
from bot.db.encryption import generate_key
from tests.conftest import pg_schema
from tests.harness.inprocess import ORIGIN, OUTSIDER, running_bot

REPO = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("TEST_DATABASE_URL")
CONTRACT_FIELDS = (
    "event",
    "timestamp",
    "request_id",
    "actor",
    "team_id",
    "hook_id",
    "secret_name",
    "outcome",
)


@dataclass(frozen=True)
class Trail:
    """A database holding the audit trail of a real flow, and the lines the bot printed."""

    url: str
    printed: list[dict[str, Any]]
    cwd: Path
    key: str | None = None  # HOOK_SECRET_ENCRYPTION_KEY, which keys the chain


def _cli(trail: Trail, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m bot audit ARGS`` with only DATABASE_URL and the encryption key set, as a cron
    job would run it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AUTH0_", "HOOK_"))}
    env |= {"DATABASE_URL": trail.url, "PYTHONPATH": str(REPO)}
    if trail.key is not None:
        env["HOOK_SECRET_ENCRYPTION_KEY"] = trail.key
    return subprocess.run(
        [sys.executable, "-m", "bot", "audit", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=trail.cwd,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def trail(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Trail]:
    """One real flow per database: an add approved and applied, a rejection, a denial."""
    with ExitStack() as stack:
        cwd = tmp_path_factory.mktemp("audit-cli")
        if request.param == "sqlite":
            url = f"sqlite:///{cwd / 'bot.db'}"
        elif PG_URL:
            url = stack.enter_context(pg_schema(PG_URL))
        else:
            pytest.skip("TEST_DATABASE_URL is not set: PostgreSQL audit CLI tests skipped")
        with running_bot(url) as bot:
            bot.decide(bot.request_approval(name="API_KEY"), comment="ok")
            bot.drain()
            bot.decide(bot.request_approval(name="OTHER_KEY"), approve=False, comment="no")
            bot.drain()
            assert bot.driver.slash_command(OUTSIDER, "add", channel_id=ORIGIN).status == 200
            bot.drain()
            printed = bot.audit()
            key = ",".join(bot.settings.encryption_keys)
        yield Trail(url, printed, cwd, key)


@pytest.fixture
def pristine(trail: Trail) -> Iterator[Trail]:
    """The trail, restored row for row after the test has tampered with it."""
    engine = create_engine(trail.url)
    with engine.connect() as connection:
        rows = [dict(r._mapping) for r in connection.execute(text("SELECT * FROM audit_log"))]
    yield trail
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_log"))
        columns = ", ".join(rows[0])
        values = ", ".join(f":{c}" for c in rows[0])
        connection.execute(text(f"INSERT INTO audit_log ({columns}) VALUES ({values})"), rows)  # noqa: S608 - column names come from the table itself
    engine.dispose()


def test_verify_exits_0_on_the_trail_a_real_flow_wrote(trail: Trail) -> None:
    """An untouched trail verifies: exit 0, and the number of records checked."""
    result = _cli(trail, "verify")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"intact: {len(trail.printed)} records" in result.stdout


def test_export_prints_the_lines_the_bot_printed_with_the_contract_fields(trail: Trail) -> None:
    """Export gives one JSON object per line, the same events the bot printed as they
    happened, each with every CONTRACT §5 field and a UTC ISO 8601 timestamp."""
    result = _cli(trail, "export")
    assert result.returncode == 0, result.stderr
    exported = [json.loads(line) for line in result.stdout.splitlines()]
    assert exported == trail.printed
    assert [r["event"] for r in exported] == [
        "request.submitted",
        "approval.added",
        "request.approved",
        "secret.added",
        "request.submitted",
        "request.rejected",
        "request.denied",
    ]
    for record in exported:
        assert record["audit"] is True
        assert set(CONTRACT_FIELDS) <= set(record), record
        moment = datetime.fromisoformat(record["timestamp"])
        assert record["timestamp"].endswith("Z") and moment.utcoffset() == timedelta(0)
        assert record["team_id"] == "T0TEAM" and record["actor"]
    added = exported[3]
    assert (added["secret_name"], added["outcome"], added["actor"]) == (
        "API_KEY",
        "applied",
        "U0APP",
    )
    assert exported[5]["comment"] == "no"
    assert exported[6]["request_id"] is None and exported[6]["actor"] == OUTSIDER


def _since(trail: Trail, *args: str) -> list[dict[str, Any]]:
    result = _cli(trail, "export", *args)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_export_into_a_reader_that_stops_early_ends_quietly(trail: Trail) -> None:
    """``audit export | head``: the reader goes away and export ends with SIGPIPE's status,
    no BrokenPipeError traceback, nothing on stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AUTH0_", "HOOK_"))}
    env |= {"DATABASE_URL": trail.url, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "audit", "export"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=trail.cwd,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # a reader that is gone before the first line
    assert proc.wait(60) == 141
    assert proc.stderr.read() == b""


def test_export_since_keeps_records_from_that_instant_on(trail: Trail) -> None:
    """``--since`` keeps the records at or after the instant, whatever offset it is written in;
    a naive time is UTC."""
    middle = trail.printed[3]
    moment = datetime.fromisoformat(middle["timestamp"])
    later = [r for r in trail.printed if datetime.fromisoformat(r["timestamp"]) >= moment]
    assert 0 < len(later) < len(trail.printed)
    as_utc = moment.isoformat()
    in_berlin = moment.astimezone(datetime.fromisoformat("2026-06-01T00:00:00+02:00").tzinfo)
    naive = moment.replace(tzinfo=None).isoformat()
    assert _since(trail, "--since", as_utc) == later
    assert _since(trail, "--since", in_berlin.isoformat()) == later
    assert _since(trail, "--since", naive) == later
    assert _since(trail, "--since", (moment + timedelta(days=1)).isoformat()) == []


def test_export_since_refuses_a_time_it_cannot_read(trail: Trail) -> None:
    """An unreadable ``--since`` exits 2 naming the option, and prints no record."""
    result = _cli(trail, "export", "--since", "last tuesday")
    assert result.returncode == 2
    assert "--since" in result.stderr and result.stdout == ""


def _seq(connection: Connection, event: str) -> int:
    seq = connection.execute(
        text("SELECT min(seq) FROM audit_log WHERE event = :event"), {"event": event}
    ).scalar_one()
    assert isinstance(seq, int)
    return seq


def _last(connection: Connection) -> tuple[int, str]:
    row = connection.execute(text("SELECT seq, hash FROM audit_log ORDER BY seq DESC")).first()
    assert row is not None
    return int(row[0]), str(row[1])


def _edit_outcome(c: Connection) -> int:
    seq = _seq(c, "request.rejected")
    c.execute(text("UPDATE audit_log SET outcome = 'approved' WHERE seq = :s"), {"s": seq})
    return seq


def _edit_detail(c: Connection) -> int:
    seq = _seq(c, "request.rejected")
    c.execute(text("UPDATE audit_log SET detail = '{}' WHERE seq = :s"), {"s": seq})
    return seq


def _backdate(c: Connection) -> int:
    seq = _seq(c, "secret.added")
    c.execute(
        text("UPDATE audit_log SET timestamp = '2020-01-01T00:00:00.000000Z' WHERE seq = :s"),
        {"s": seq},
    )
    return seq


def _edit_and_rehash(c: Connection) -> int:
    """Change who approved, and give the record a plain hash matching its new content (the
    keyed one needs the key): an unkeyed record after keyed ones is caught where it is."""
    seq = _seq(c, "request.approved")
    c.execute(text("UPDATE audit_log SET actor = 'U0FORGER' WHERE seq = :s"), {"s": seq})
    row = c.execute(text("SELECT * FROM audit_log WHERE seq = :s"), {"s": seq}).one()._mapping
    body = {name: row[name] for name in ("seq", "event", "timestamp", *audit.CORE_FIELDS)}
    body["detail"] = json.loads(row["detail"])
    rehashed = audit.record_hash(row["prev_hash"], body)
    c.execute(text("UPDATE audit_log SET hash = :h WHERE seq = :s"), {"h": rehashed, "s": seq})
    return seq


def _delete(c: Connection) -> int:
    seq = _seq(c, "request.approved")
    c.execute(text("DELETE FROM audit_log WHERE seq = :s"), {"s": seq})
    return seq


def _delete_first(c: Connection) -> int:
    c.execute(text("DELETE FROM audit_log WHERE seq = 1"))
    return 1


def _reorder(c: Connection) -> int:
    """Swap two neighbours through a free number: the primary key forbids duplicates."""
    seq = _seq(c, "request.approved")
    for old, new in ((seq, -1), (seq + 1, seq), (-1, seq + 1)):
        c.execute(
            text("UPDATE audit_log SET seq = :new WHERE seq = :old"), {"old": old, "new": new}
        )
    return seq


def _forge(
    prev_hash: Callable[[str], str], record_hash: Callable[[str, dict[str, Any]], str]
) -> Callable[[Connection], int]:
    def forge(c: Connection) -> int:
        seq, last_hash = _last(c)
        body: dict[str, Any] = {
            "seq": seq + 1,
            "event": "secret.added",
            "timestamp": "2026-01-01T00:00:00.000000Z",
            **dict.fromkeys(audit.CORE_FIELDS),
            "detail": {},
        }
        body.update(actor="U0APP", team_id="T0TEAM", secret_name="BACKDOOR", outcome="applied")
        prev = prev_hash(last_hash)
        c.execute(
            text(
                "INSERT INTO audit_log (seq, timestamp, event, request_id, actor, team_id, "
                "hook_id, secret_name, outcome, detail, prev_hash, hash) VALUES (:seq, "
                ":timestamp, :event, :request_id, :actor, :team_id, :hook_id, :secret_name, "
                ":outcome, '{}', :prev, :hash)"
            ),
            {**body, "prev": prev, "hash": record_hash(prev, body)},
        )
        return seq + 1

    return forge


TAMPERS: dict[str, tuple[Callable[[Connection], int], str]] = {
    "edited outcome": (_edit_outcome, "content does not match"),
    "edited detail": (_edit_detail, "content does not match"),
    "backdated": (_backdate, "content does not match"),
    "edited and rehashed": (_edit_and_rehash, "unkeyed after keyed records"),
    "deleted": (_delete, "missing"),
    "first deleted": (_delete_first, "missing"),
    "reordered pair": (_reorder, "link to the previous record is broken"),
    "forged with a wrong link": (
        _forge(lambda _: audit.GENESIS, audit.record_hash),
        "link to the previous record is broken",
    ),
    "forged with a made-up hash": (
        _forge(lambda last: last, lambda _, __: "f" * 64),
        "content does not match",
    ),
}


@pytest.mark.parametrize("tamper", list(TAMPERS))
def test_verify_exits_1_naming_the_first_broken_record(pristine: Trail, tamper: str) -> None:
    """After an edit, deletion, reordering or forgery, verify exits 1 and names the first
    record whose content, place or link no longer holds."""
    alter, problem = TAMPERS[tamper]
    engine = create_engine(pristine.url)
    with engine.begin() as connection:
        broken = alter(connection)
    engine.dispose()
    result = _cli(pristine, "verify")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"BROKEN at record {broken}:" in result.stdout
    assert problem in result.stdout


def test_unreadable_database_exits_3_not_1(tmp_path: Path) -> None:
    """A database that does not answer is not a broken trail: exit 3, one line, no password."""
    nowhere = Trail(
        "postgresql+psycopg://auditor:pa55word-not-shown@127.0.0.1:1/audit", [], tmp_path
    )
    for command in ("verify", "export"):
        result = _cli(nowhere, command)
        assert result.returncode == 3, result.stdout + result.stderr
        assert result.stdout == "" and len(result.stderr.splitlines()) == 1
        assert "cannot read the audit trail" in result.stderr
        assert "pa55word" not in result.stderr


def test_a_database_without_a_trail_exits_3_and_is_not_created(tmp_path: Path, db_url: str) -> None:
    """A mistyped DATABASE_URL reads as unreadable (3), never as an intact empty trail: a
    missing SQLite file, or a PostgreSQL schema without tables."""
    # SQLite: a file that does not exist; PostgreSQL: the fresh schema, no tables in it.
    url = f"sqlite:///{tmp_path / 'typo.db'}" if db_url.startswith("sqlite") else db_url
    result = _cli(Trail(url, [], tmp_path), "verify")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "intact" not in result.stdout
    assert not (tmp_path / "typo.db").exists()


def _witness(trail: Trail, path: Path, lines: list[dict[str, Any]] | None = None) -> str:
    """The printed lines as a SIEM would export them, among a log line and a broken line."""
    printed = trail.printed if lines is None else lines
    noise = [json.dumps({"event": "request served", "level": "info"}), "not json {"]
    path.write_text("\n".join([noise[0], *map(json.dumps, printed), noise[1]]) + "\n")
    return str(path)


def _tampered(trail: Trail, statement: str, **params: Any) -> None:
    engine = create_engine(trail.url)
    with engine.begin() as connection:
        connection.execute(text(statement), params)
    engine.dispose()


def test_verify_against_the_printed_lines_exits_0_and_says_what_it_ignored(
    trail: Trail, tmp_path: Path
) -> None:
    """The trail and the lines the bot printed agree: exit 0, two lines, the ignored ones
    (not JSON, not audit) counted."""
    result = _cli(trail, "verify", "--against", _witness(trail, tmp_path / "siem.jsonl"))
    assert result.returncode == 0, result.stdout + result.stderr
    chain, compared = result.stdout.splitlines()
    assert chain == f"audit trail intact: {len(trail.printed)} records"
    assert f"matches {tmp_path / 'siem.jsonl'}: {len(trail.printed)} records" in compared
    assert "2 lines ignored: 1 not JSON, 1 not audit lines" in compared


def test_a_cut_off_tail_passes_plain_verify_but_fails_verify_against(
    pristine: Trail, tmp_path: Path
) -> None:
    """Deleting the last records leaves an intact chain (plain verify can't see it: exit 0),
    but the printed lines hold more: exit 1 naming the first deleted record."""
    last = len(pristine.printed)
    _tampered(pristine, "DELETE FROM audit_log WHERE seq >= :s", s=last - 1)
    assert _cli(pristine, "verify").returncode == 0
    result = _cli(pristine, "verify", "--against", _witness(pristine, tmp_path / "w.jsonl"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"DIFFERS from {tmp_path / 'w.jsonl'} at record {last - 1}: " in result.stdout
    assert f"record {last - 1} is in the file but not in the database" in result.stdout
    assert "2 not in the database, 0 not in the file, 0 changed" in result.stdout


def test_a_file_cut_short_fails_verify_against(trail: Trail, tmp_path: Path) -> None:
    """A file whose tail was cut off misses records the database has: exit 1 naming the
    first one."""
    lines = trail.printed[:-2]
    result = _cli(trail, "verify", "--against", _witness(trail, tmp_path / "w.jsonl", lines))
    assert result.returncode == 1, result.stdout + result.stderr
    first = len(trail.printed) - 1
    assert f"at record {first}: record {first} is in the database but not in the file" in (
        result.stdout
    )


def test_an_extra_record_sealed_with_the_key_fails_only_verify_against(
    pristine: Trail, tmp_path: Path
) -> None:
    """A record added with the key (or never printed) keeps the chain intact, and the file
    names it as missing there: exit 1 with its id."""
    assert pristine.key is not None
    engine = create_engine(pristine.url)
    with Session(engine) as session, session.begin():
        keys = ChainKeys(pristine.key.split(","))
        added = audit.append(session, audit.AuditEvent("secret.added", actor="U0X"), keys=keys)
    engine.dispose()
    assert _cli(pristine, "verify").returncode == 0
    result = _cli(pristine, "verify", "--against", _witness(pristine, tmp_path / "w.jsonl"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"at record {added['id']}: record {added['id']} is in the database but not" in (
        result.stdout
    )


def test_a_changed_record_fails_verify_against_naming_the_field(
    pristine: Trail, tmp_path: Path
) -> None:
    """An edited record (or an edited line) is named with the fields that differ; the chain
    is reported broken at the same record."""
    seq = next(r["id"] for r in pristine.printed if r["event"] == "request.rejected")
    _tampered(pristine, "UPDATE audit_log SET outcome = 'approved' WHERE seq = :s", s=seq)
    result = _cli(pristine, "verify", "--against", _witness(pristine, tmp_path / "w.jsonl"))
    assert result.returncode == 1, result.stdout + result.stderr
    chain, compared = result.stdout.splitlines()
    assert f"BROKEN at record {seq}:" in chain
    assert f"at record {seq}: record {seq} differs between the database and the file (outcome)" in (
        compared
    )
    assert "0 not in the database, 0 not in the file, 1 changed" in compared


def test_a_changed_line_in_the_file_fails_verify_against(trail: Trail, tmp_path: Path) -> None:
    """A line edited in the file (here a dropped field) differs from its intact record."""
    lines = [dict(r) for r in trail.printed]
    del lines[1]["actor"]
    result = _cli(trail, "verify", "--against", _witness(trail, tmp_path / "w.jsonl", lines))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "intact" in result.stdout.splitlines()[0]
    assert f"record {lines[1]['id']} differs between the database and the file (actor)" in (
        result.stdout
    )


def test_a_missing_middle_record_fails_verify_against_with_its_id(
    pristine: Trail, tmp_path: Path
) -> None:
    """A record deleted from the middle: both checks name it."""
    _tampered(pristine, "DELETE FROM audit_log WHERE seq = 3")
    result = _cli(pristine, "verify", "--against", _witness(pristine, tmp_path / "w.jsonl"))
    assert result.returncode == 1, result.stdout + result.stderr
    chain, compared = result.stdout.splitlines()
    assert "BROKEN at record 3: record 3 is missing" in chain
    assert "at record 3: record 3 is in the file but not in the database" in compared


def test_a_rewritten_and_rehashed_trail_fails_verify(pristine: Trail) -> None:
    """Rewriting one record and recomputing every later hash without the key: exit 1 naming
    the rewritten record."""
    seq = next(r["id"] for r in pristine.printed if r["event"] == "request.approved")
    engine = create_engine(pristine.url)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE audit_log SET actor = 'U0FORGER' WHERE seq = :s"), {"s": seq}
        )
        rows = connection.execute(
            text("SELECT * FROM audit_log WHERE seq >= :s ORDER BY seq"), {"s": seq}
        ).all()
        prev = rows[0]._mapping["prev_hash"]
        for row in rows:
            body = {n: row._mapping[n] for n in ("seq", "event", "timestamp", *audit.CORE_FIELDS)}
            body["detail"] = json.loads(row._mapping["detail"])
            new = audit.record_hash(prev, body)
            connection.execute(
                text("UPDATE audit_log SET prev_hash = :p, hash = :h WHERE seq = :s"),
                {"p": prev, "h": new, "s": row._mapping["seq"]},
            )
            prev = new
    engine.dispose()
    result = _cli(pristine, "verify")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"BROKEN at record {seq}: its hash is unkeyed after keyed records" in result.stdout


def test_verify_without_the_key_says_what_it_could_not_check(trail: Trail) -> None:
    """Without HOOK_SECRET_ENCRYPTION_KEY (and no key file) the links are checked but not the
    HMACs: exit 0 as before the keying, and the line says what went unchecked and why."""
    result = _cli(Trail(trail.url, trail.printed, trail.cwd), "verify")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "NOT fully checked" in result.stdout and "intact" not in result.stdout
    assert f"the HMACs of the {len(trail.printed)} keyed ones were not checked" in result.stdout
    assert "HOOK_SECRET_ENCRYPTION_KEY is not set" in result.stdout


def test_verify_after_a_key_rotation(trail: Trail) -> None:
    """With a new key put first, records sealed under the old one still verify (exit 0);
    with the old key dropped, the first record it sealed is named (exit 1)."""
    assert trail.key is not None
    new = generate_key()
    rotated = _cli(Trail(trail.url, trail.printed, trail.cwd, f"{new},{trail.key}"), "verify")
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    dropped = _cli(Trail(trail.url, trail.printed, trail.cwd, new), "verify")
    assert dropped.returncode == 1, dropped.stdout + dropped.stderr
    assert "BROKEN at record 1: it is keyed under key id " in dropped.stdout
    assert "a retired key must stay listed, last" in dropped.stdout


def test_verify_against_a_file_it_cannot_read_exits_2(trail: Trail, tmp_path: Path) -> None:
    """A FILE that can't be read exits 2 with one line naming it, before reading the trail."""
    result = _cli(trail, "verify", "--against", str(tmp_path / "nowhere.jsonl"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == "" and "nowhere.jsonl" in result.stderr
