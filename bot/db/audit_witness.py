"""The audit trail compared with a witness: its lines as the bot printed them (e.g. from a SIEM)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from bot.db.audit import as_printed


class Kind(Enum):
    """How a record and its printed line disagree."""

    NOT_IN_DATABASE = "is in the file but not in the database (deleted?)"
    NOT_IN_FILE = "is in the database but not in the file (added, or the file is cut short?)"
    CHANGED = "differs between the database and the file"


@dataclass
class Witness:
    """The audit lines of a file by record id, and what was left out of them."""

    lines: dict[int, dict[str, Any]] = field(default_factory=dict)
    not_json: int = 0  # lines that are not a JSON object
    not_audit: int = 0  # JSON objects without "audit": true (log lines)
    no_id: int = 0  # audit lines without a record id to pair them by
    # Ids printed twice with different content: the file disagrees with itself.
    conflicting: set[int] = field(default_factory=set)

    @property
    def ignored(self) -> int:
        """How many lines were left out of the comparison."""
        return self.not_json + self.not_audit + self.no_id

    def add(self, line: str) -> None:
        """Take one line of the file."""
        if not line.strip():
            return
        try:
            item = json.loads(line)
        except ValueError:
            item = None
        if not isinstance(item, dict):
            self.not_json += 1
        elif item.get("audit") is not True:
            self.not_audit += 1
        elif type(item.get("id")) is not int:
            self.no_id += 1
        elif self.lines.setdefault(item["id"], item) != item:
            self.conflicting.add(item["id"])  # the same line twice is only a duplicate


def read_witness(lines: Iterable[str]) -> Witness:
    """The witness from a file's lines; non-JSON and non-audit lines are counted, not kept."""
    witness = Witness()
    for line in lines:
        witness.add(line)
    return witness


@dataclass(frozen=True)
class Difference:
    """One record on which the trail and the witness disagree."""

    seq: int
    kind: Kind
    fields: tuple[str, ...] = ()

    def describe(self) -> str:
        """One phrase: the record, how it differs and (when changed) in which fields."""
        where = f" ({', '.join(self.fields)})" if self.fields else ""
        return f"record {self.seq} {self.kind.value}{where}"


@dataclass
class Comparison:
    """Every disagreement, by kind; ``agreed`` records matched their printed line."""

    agreed: int = 0
    differences: list[Difference] = field(default_factory=list)

    @property
    def first(self) -> Difference | None:
        """The disagreement on the lowest record id."""
        return min(self.differences, key=lambda d: d.seq) if self.differences else None

    def count(self, kind: Kind) -> int:
        """How many records disagree this way."""
        return sum(d.kind is kind for d in self.differences)


def compare(records: Iterable[dict[str, Any]], witness: Witness) -> Comparison:
    """Pair the trail's records (public form) with the witness's lines by record id."""
    result, seen = Comparison(), set()
    for record in records:
        seq = record["id"]
        line = witness.lines.get(seq)
        if line is None:
            result.differences.append(Difference(seq, Kind.NOT_IN_FILE))
            continue
        seen.add(seq)
        fields = _changed(record, line)
        if seq in witness.conflicting:
            fields += ("printed twice in the file, differently",)
        if fields:
            result.differences.append(Difference(seq, Kind.CHANGED, fields))
        else:
            result.agreed += 1
    for seq in witness.lines.keys() - seen:
        result.differences.append(Difference(seq, Kind.NOT_IN_DATABASE))
    return result


def _changed(record: dict[str, Any], line: dict[str, Any]) -> tuple[str, ...]:
    """The fields that differ, either way: a field dropped from the database shows too."""
    printed = json.loads(json.dumps(as_printed(record)))
    missing = object()
    names = list(printed) + [name for name in line if name not in printed]
    return tuple(n for n in names if printed.get(n, missing) != line.get(n, missing))
