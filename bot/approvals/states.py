"""What a request does and where it is in its life: the two enums every layer shares."""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    """What a request does to one secret of a hook or an action."""

    ADD = "add"
    UPDATE = "update"
    REMOVE = "remove"


class State(StrEnum):
    """Lifecycle: pending → approved → applied | failed; pending → rejected | expired."""

    PENDING = "pending"
    APPROVED = "approved"
    APPLIED = "applied"
    FAILED = "failed"
    REJECTED = "rejected"
    EXPIRED = "expired"


OPEN_STATES = (State.PENDING, State.APPROVED)
