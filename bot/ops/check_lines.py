"""One line of ``hook-secret-bot check``: a check's name, its status and what it found."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

OK: Final = "ok"
FAIL: Final = "FAIL"
# A check that could not run because one it depends on did not pass: not a pass (exit 1).
SKIP: Final = "skip"


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    status: str
    name: str
    detail: str

    @property
    def ok(self) -> bool:
        """Whether the check passed (a skipped check did not)."""
        return self.status == OK

    def line(self) -> str:
        return f"{self.status:<4} {self.name}: {self.detail}"


class CheckFailed(Exception):
    """A probe ran but found a problem; the message says how to fix it."""
