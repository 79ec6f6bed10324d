"""Every limit in one place: Auth0's caps and placeholder, and what people may type."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

# Auth0 Hooks hold at most this many secrets each.
MAX_SECRETS_PER_HOOK: Final = 20
# Auth0 Actions hold at most this many secrets each.
MAX_SECRETS_PER_ACTION: Final = 30
# What Auth0 shows in place of a hidden value; sending it back would wipe the real one.
VALUE_PLACEHOLDER: Final = "_VALUE_NOT_SHOWN_"

SECRET_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
HOOK_ID: Final = re.compile(r"^[A-Za-z0-9-]{1,64}$")
# Auth0's limits on a secret's name and value, for hooks and actions alike.
NAME_MAX: Final = 128
VALUE_MAX: Final = 4096
REASON_MAX: Final = 1000
COMMENT_MAX: Final = 1000


def valid_name(name: str) -> bool:
    """Whether ``name`` is a secret name the bot accepts (and may therefore record)."""
    return len(name) <= NAME_MAX and SECRET_NAME.match(name) is not None


@dataclass(frozen=True)
class Provenance:
    """Who last set a secret through the bot, from the audit trail."""

    added: bool  # False: rotated
    requester: str | None
    approver: str | None
    timestamp: str
