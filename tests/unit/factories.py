"""Domain objects for the pure-layer tests, built without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.approvals.states import Kind, State
from bot.db.models import SecretRequest

REQUEST_ID = "hsr_0123456789abcdef"


def secret_request(kind: Kind = Kind.ADD, **changes: Any) -> SecretRequest:
    """A pending request to change API_KEY on hook 01-hook; ``changes`` override fields."""
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    fields: dict[str, Any] = {
        "id": REQUEST_ID,
        "kind": kind,
        "target_kind": "hook",
        "state": State.PENDING,
        "team_id": "T0",
        "requester": "U0REQ",
        "origin_channel": "C0",
        "target_id": "01-hook",
        "target_name": "Hook <b>&",
        "secret_name": "API_KEY",
        "reason": "vendor <rotated>",
        "fingerprint": "fp0123",
        "required_approvals": 1,
        "created_at": now,
        "expires_at": now + timedelta(hours=24),
    }
    fields.update(changes)
    return SecretRequest(**fields)
