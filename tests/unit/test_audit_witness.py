"""Pairing the audit trail with a witness file's lines: what is read, ignored and reported."""

from __future__ import annotations

import json
from typing import Any

from bot.db.audit_witness import Kind, compare, read_witness


def _record(seq: int, **fields: Any) -> dict[str, Any]:
    return {"audit": True, "id": seq, "event": "request.denied", "actor": "U1", **fields}


def test_lines_that_are_not_audit_records_are_counted_and_left_out() -> None:
    """Blank lines are skipped; non-JSON (or non-object) lines, log lines and audit lines
    without an integer id are each counted; a line printed twice is one record."""
    lines = [
        "",
        "2026-01-01 something happened",
        json.dumps([1, 2]),
        json.dumps({"event": "request served", "level": "info"}),
        json.dumps({"audit": "true", "id": 9}),
        json.dumps({"audit": True, "id": "1"}),
        json.dumps({"audit": True, "id": True}),
        json.dumps(_record(1)),
        json.dumps(_record(1)),
    ]
    witness = read_witness(lines)
    assert (witness.not_json, witness.not_audit, witness.no_id) == (2, 2, 2)
    assert witness.ignored == 6 and list(witness.lines) == [1] and not witness.conflicting


def test_every_kind_of_difference_is_reported_and_the_first_is_the_lowest_id() -> None:
    """A record only in the file, one only in the trail, a changed field, a field dropped on
    one side, and two different lines for one id are each named; the lowest id comes first."""
    trail = [_record(1), _record(2, outcome="x"), _record(3), _record(5), _record(6)]
    lines = [
        _record(1),
        _record(2, outcome="y"),
        _record(3, comment="dropped from the database"),
        _record(4),
        _record(6),
        _record(6, actor="U2"),
    ]
    comparison = compare(trail, read_witness(map(json.dumps, lines)))
    found = {(d.seq, d.kind, d.fields) for d in comparison.differences}
    assert found == {
        (2, Kind.CHANGED, ("outcome",)),
        (3, Kind.CHANGED, ("comment",)),
        (4, Kind.NOT_IN_DATABASE, ()),
        (5, Kind.NOT_IN_FILE, ()),
        (6, Kind.CHANGED, ("printed twice in the file, differently",)),
    }
    assert comparison.agreed == 1 and comparison.first is not None
    assert comparison.first.describe() == (
        "record 2 differs between the database and the file (outcome)"
    )


def test_an_agreeing_witness_has_no_difference() -> None:
    """The same records on both sides, in any order in the file: nothing to report."""
    trail = [_record(n) for n in range(1, 4)]
    comparison = compare(trail, read_witness(json.dumps(r) for r in reversed(trail)))
    assert (comparison.agreed, comparison.differences, comparison.first) == (3, [], None)
