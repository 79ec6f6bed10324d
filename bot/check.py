"""``hook-secret-bot check``: settings and connectivity, one line per check with a fix hint."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.auth0.client import Auth0Client
from bot.auth0.errors import Auth0Error
from bot.logs import SECRETS
from bot.policy import Directory, Principals
from bot.runtime import auth0_client, register_settings_secrets, slack_client
from bot.settings import Settings
from bot.store import Store

NEEDED_SCOPES = ("read:hooks", "update:hooks", "delete:hooks")


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    ok: bool
    name: str
    detail: str


def run_checks(
    settings: Settings,
    out: TextIO | None = None,
    slack: WebClient | None = None,
    auth0: Auth0Client | None = None,
) -> int:
    """Print one line per check; 0 only when every check passes. Never prints a secret."""
    register_settings_secrets(settings)
    out = out or sys.stdout
    slack = slack or slack_client(settings)
    auth0 = auth0 or auth0_client(settings)
    results: list[Check] = [Check(True, "settings", "all variables valid")]
    team_id = _run(results, "slack auth.test", lambda: _slack_auth(slack))
    if team_id and settings.hook_secret_approval_channel:
        channel = settings.hook_secret_approval_channel
        _run(results, "approval channel", lambda: _channel(slack, channel))
    if team_id:
        directory = Directory(slack, team_id)
        for label, ids in (
            ("requesters", settings.hook_secret_requesters),
            ("approvers", settings.hook_secret_approvers),
        ):
            if ids:
                _run(results, label, lambda ids=ids: _people(directory, ids))  # type: ignore[misc]
    _run(results, "auth0 token", lambda: _scopes(auth0))
    _run(results, "auth0 GET /api/v2/hooks", lambda: f"{len(auth0.list_hooks())} hooks readable")
    _run(results, "database", lambda: _database(settings.database_url))
    for check in results:
        line = f"{'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}"
        out.write(SECRETS.scrub(line) + "\n")
    auth0.close()
    return 0 if all(c.ok for c in results) else 1


def _run(results: list[Check], name: str, probe: Callable[[], str]) -> str | None:
    try:
        detail = probe()
    except CheckFailed as failure:
        results.append(Check(False, name, str(failure)))
        return None
    except Auth0Error as error:
        results.append(Check(False, name, error.message))
        return None
    except SlackApiError as error:
        code = error.response.get("error")
        results.append(Check(False, name, f"Slack said {code}; {_slack_hint(code)}"))
        return None
    except Exception as error:
        results.append(Check(False, name, f"{type(error).__name__}: {error}"))
        return None
    results.append(Check(True, name, detail))
    return detail


class CheckFailed(Exception):
    """A probe ran but found a problem; the message says how to fix it."""


def _slack_auth(slack: WebClient) -> str:
    response = slack.auth_test()
    return str(response["team_id"]) + f" ({response.get('team')}, bot {response.get('user_id')})"


def _channel(slack: WebClient, channel: str) -> str:
    info = slack.conversations_info(channel=channel)["channel"]
    if not info.get("is_member"):
        raise CheckFailed(f"the bot is not a member of {channel}: invite it with /invite @bot")
    return f"bot is a member of #{info.get('name', channel)}"


def _people(directory: Directory, ids: list[str]) -> str:
    principals = Principals.parse(ids)
    people = set(principals.users)
    for group in principals.groups:
        members = directory.members(group)
        if not members:
            raise CheckFailed(
                f"user group {group} has no members or can't be read "
                "(needs the usergroups:read scope)"
            )
        people |= members
    return f"{len(people)} people"


def _scopes(auth0: Auth0Client) -> str:
    scopes = auth0.token_scopes()
    missing = [s for s in NEEDED_SCOPES if s not in scopes]
    if missing:
        raise CheckFailed(
            "the application lacks " + ", ".join(missing) + ": grant them in "
            "Auth0 Dashboard → Applications → APIs → Auth0 Management API"
        )
    return "token issued with " + " ".join(s for s in sorted(scopes) if s.endswith(":hooks"))


def _database(url: str) -> str:
    store = Store(url)
    try:
        if not store.ping():
            raise CheckFailed("the database does not answer; check DATABASE_URL")
    finally:
        store.close()
    return "answers"


def _slack_hint(code: object) -> str:
    return {
        "invalid_auth": "SLACK_BOT_TOKEN is wrong or revoked",
        "not_authed": "SLACK_BOT_TOKEN is missing",
        "channel_not_found": "the channel id is wrong or the bot can't see it (invite the bot)",
        "missing_scope": "reinstall the app from manifest.yaml to grant its scopes",
    }.get(str(code), "see Slack's error reference")
