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

from bot.db import audit
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


def _cli(trail: Trail, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m bot audit ARGS`` with only DATABASE_URL set, as a cron job would run it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AUTH0_", "HOOK_"))}
    env |= {"DATABASE_URL": trail.url, "PYTHONPATH": str(REPO)}
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
        yield Trail(url, printed, cwd)


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
    added = exported[2]
    assert (added["secret_name"], added["outcome"], added["actor"]) == (
        "API_KEY",
        "applied",
        "U0APP",
    )
    assert exported[4]["comment"] == "no"
    assert exported[5]["request_id"] is None and exported[5]["actor"] == OUTSIDER


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
    """Change who approved, and give the record a hash matching its new content."""
    seq = _seq(c, "request.approved")
    c.execute(text("UPDATE audit_log SET actor = 'U0FORGER' WHERE seq = :s"), {"s": seq})
    row = c.execute(text("SELECT * FROM audit_log WHERE seq = :s"), {"s": seq}).one()._mapping
    body = {name: row[name] for name in ("seq", "event", "timestamp", *audit.CORE_FIELDS)}
    body["detail"] = json.loads(row["detail"])
    rehashed = audit.record_hash(row["prev_hash"], body)
    c.execute(text("UPDATE audit_log SET hash = :h WHERE seq = :s"), {"h": rehashed, "s": seq})
    return seq + 1  # the record after it no longer links to it


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
    "edited and rehashed": (_edit_and_rehash, "link to the previous record is broken"),
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
