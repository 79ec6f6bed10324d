"""What both harnesses share: the repository, the fake credentials, the people and channels."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from standins.auth0 import Auth0Sandbox

REPO = Path(__file__).resolve().parents[2]
# Long enough that the log redactor never mistakes ordinary words for them.
SIGNING_SECRET = "process-signing-secret-0123456789"
BOT_TOKEN = "xoxb-process-bot-token-0123456789"
APP_TOKEN = "xapp-1-A0APP-process-app-token-0123456789"
CLIENT_SECRET = "sandbox-client-secret"
REQUESTER, APPROVER, APPROVER2, OUTSIDER, GROUPIE = "U0REQ", "U0APP", "U0APP2", "U0OUT", "U0GRP"
ORIGIN, APPROVALS = "C0GENERAL", "C0APPROVE"


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def secret_posts(auth0: Auth0Sandbox) -> list[Any]:
    """The POSTs to a hook's secrets the sandbox received (each one an add attempt)."""
    return [r for r in auth0.requests if r.method == "POST" and r.path.endswith("/secrets")]
