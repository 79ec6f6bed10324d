"""``hook-secret-bot check``: settings and connectivity, one line per check with a fix hint."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from urllib.error import URLError
from urllib.parse import urlsplit

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.approvals.policy import Principals
from bot.auth0.actions import list_actions
from bot.auth0.client import Auth0Client
from bot.auth0.errors import Auth0Error, Auth0Unavailable, InsufficientScope
from bot.db.engine import sqlite_path
from bot.db.store import Store
from bot.logs import SECRETS
from bot.outbox.readback import SCOPES as READ_BACK_SCOPES
from bot.serve.runtime import auth0_client, register_settings_secrets, slack_client
from bot.settings import Settings

# What the contract asks of the machine-to-machine application (CONTRACT §2).
NEEDED_SCOPES = ("read:hooks", "create:hooks", "update:hooks", "delete:hooks")
ACTION_SCOPES = ("read:actions", "update:actions", "create:actions")
GRANT_PLACE = "Auth0 Dashboard → Applications → APIs → Auth0 Management API"
# How long a reachability probe may take: check is run by a person waiting at a terminal.
PROBE_TIMEOUT = 5.0


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    ok: bool
    name: str
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"


class CheckFailed(Exception):
    """A probe ran but found a problem; the message says how to fix it."""


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
    try:
        results = list(_checks(settings, slack, auth0))
    finally:
        auth0.close()
    for check in results:
        out.write(SECRETS.scrub(check.line()) + "\n")
    return 0 if all(c.ok for c in results) else 1


def _checks(settings: Settings, slack: WebClient, auth0: Auth0Client) -> list[Check]:
    results = [Check(True, "settings", "all variables valid")]
    auth_test = _reaching_slack(settings, lambda: _slack_auth(slack))
    team_id = _run(results, "slack auth.test", auth_test)
    _run(results, "slack transport", _reaching_slack(settings, lambda: _transport(settings)))
    if team_id:
        _run(results, "slack read-back", lambda: _read_back(slack))
    if team_id and settings.hook_secret_approval_channel:
        channel = settings.hook_secret_approval_channel
        _run(results, "approval channel", lambda: _channel(slack, channel))
    if team_id:
        for label, ids in (
            ("requesters", settings.hook_secret_requesters),
            ("approvers", settings.hook_secret_approvers),
        ):
            if ids:
                _run(results, label, _people_probe(slack, team_id, ids))
    _run(results, "auth0 token", _reaching_auth0(settings, lambda: _scopes(auth0)))
    hooks = _run(
        results, "auth0 GET /api/v2/hooks", _reaching_auth0(settings, lambda: _hooks(auth0))
    )
    actions = _run(
        results,
        "auth0 GET /api/v2/actions/actions",
        _reaching_auth0(settings, lambda: _actions(auth0)),
    )
    _run(results, "auth0 targets", lambda: _targets(hooks, actions))
    _run(results, "database", lambda: _database(settings.database_url))
    return results


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
        results.append(Check(False, name, _slack_problem(error)))
        return None
    except Exception as error:  # one line per check: a crash is that check failing
        results.append(Check(False, name, f"{type(error).__name__}: {error}"))
        return None
    results.append(Check(True, name, detail))
    return detail


def _reaching_slack(settings: Settings, probe: Callable[[], str]) -> Callable[[], str]:
    """``probe``, with a Slack that can't be reached named by its variable and the network."""

    def reached() -> str:
        try:
            return probe()
        except (URLError, OSError) as error:
            why = getattr(error, "reason", None) or error
            raise CheckFailed(
                f"cannot reach Slack at {settings.slack_api_url} ({why}): check SLACK_API_URL "
                "(leave it unset for https://slack.com/api/) and that this machine may reach "
                "it (DNS, firewall, HTTPS_PROXY)"
            ) from None

    return reached


def _reaching_auth0(settings: Settings, probe: Callable[[], str]) -> Callable[[], str]:
    """``probe``, with an Auth0 that can't be reached named by the variable that points at it."""

    def reached() -> str:
        try:
            return probe()
        except Auth0Unavailable as error:
            url, variable = (
                (settings.auth0_base_url, "AUTH0_BASE_URL")
                if settings.auth0_base_url
                else (f"https://{settings.auth0_domain}", "AUTH0_DOMAIN")
            )
            why = _unreachable(url)
            if why is None:  # it answers: a timeout or a 5xx, which the message says
                raise
            raise CheckFailed(f"cannot reach {url}: {why}: check {variable}") from error

    return reached


def _unreachable(url: str) -> str | None:
    """Why nothing answers at ``url`` (the name, the port), or None when something does."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return f"the name {host} does not resolve"
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT).close()
    except ConnectionRefusedError:
        return f"{host} refuses connections on port {port}"
    except OSError as error:
        return f"{host}:{port} does not answer ({type(error).__name__})"
    return None


def _slack_auth(slack: WebClient) -> str:
    response = slack.auth_test()
    return f"{response['team_id']} ({response.get('team')}, bot {response.get('user_id')})"


def _read_back(slack: WebClient) -> str:
    """Whether the optional history scopes were granted (Slack lists a token's scopes in the
    ``x-oauth-scopes`` header of every answer)."""
    headers = {k.lower(): v for k, v in (slack.auth_test().headers or {}).items()}
    listed = headers.get("x-oauth-scopes")
    if listed is None:
        return "Slack did not list the token's scopes; see README, A post whose fate is unknown"
    missing = [s for s in READ_BACK_SCOPES if s not in {x.strip() for x in str(listed).split(",")}]
    if not missing:
        return "on: a post a crash cut off is looked for before it is sent again"
    return (
        "off (optional): a post a crash cut off may show twice; grant "
        f"{', '.join(missing)} to avoid it (README, A post whose fate is unknown)"
    )


def _transport(settings: Settings) -> str:
    if settings.slack_app_token is not None:
        client = WebClient(base_url=settings.slack_api_url, timeout=10)
        try:
            client.apps_connections_open(app_token=settings.slack_app_token.get_secret_value())
        except SlackApiError as error:
            raise CheckFailed(
                f"Slack said {error.response.get('error')}: SLACK_APP_TOKEN must be a valid "
                "app-level token with connections:write, and Socket Mode enabled for the app"
            ) from None
        return "Socket Mode: apps.connections.open accepted SLACK_APP_TOKEN"
    if settings.slack_signing_secret is None:
        raise CheckFailed(
            "SLACK_SIGNING_SECRET is required in HTTP mode (or set SLACK_APP_TOKEN for Socket Mode)"
        )
    return "HTTP mode: point Slack's request URLs at https://<your host>/slack/events"


def _channel(slack: WebClient, channel: str) -> str:
    info = slack.conversations_info(channel=channel)["channel"]
    if not info.get("is_member"):
        raise CheckFailed(
            f"the bot is not a member of {channel}: invite it there with /invite @hook-secret-bot"
        )
    return f"bot is a member of #{info.get('name', channel)}"


def _people_probe(slack: WebClient, team_id: str, ids: list[str]) -> Callable[[], str]:
    def probe() -> str:
        principals = Principals.parse(ids)
        people = set(principals.users)
        for group in principals.groups:
            response = slack.usergroups_users_list(usergroup=group, team_id=team_id)
            members = set(response.get("users") or [])
            if not members:
                raise CheckFailed(
                    f"user group {group} has no members: nobody in it could act; add people "
                    "to it in Slack or list user ids instead"
                )
            people |= members
        groups = f" from {_count(len(principals.groups), 'group')}" if principals.groups else ""
        return ("1 person" if len(people) == 1 else f"{len(people)} people") + groups

    return probe


def _scopes(auth0: Auth0Client) -> str:
    scopes = auth0.token_scopes()
    if scopes is None:  # Auth0 may leave `scope` out of the token answer
        return "token issued (Auth0 did not list its scopes; the next check reads hooks)"
    missing = [s for s in NEEDED_SCOPES if s not in scopes]
    if missing:
        them = "them" if len(missing) > 1 else "it"
        raise CheckFailed(
            f"the Auth0 application lacks {', '.join(missing)}: grant {them} in {GRANT_PLACE}"
        )
    return "token issued with " + " ".join(s for s in sorted(scopes) if s.endswith(":hooks"))


def _hooks(auth0: Auth0Client) -> str:
    hooks = auth0.list_hooks()
    return f"{_count(len(hooks), 'hook')} readable"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _actions(auth0: Auth0Client) -> str:
    scopes = auth0.token_scopes()
    missing = [s for s in ACTION_SCOPES if scopes is not None and s not in scopes]
    grant = f"grant {'them' if len(missing) > 1 else 'it'} in {GRANT_PLACE}"
    try:
        found = list_actions(auth0)
    except InsufficientScope:
        raise CheckFailed(
            f"the Auth0 application lacks {', '.join(missing) or 'read:actions'}: {grant}"
        ) from None
    if missing:
        raise CheckFailed(
            f"{_count(len(found), 'action')} readable, but the Auth0 application lacks "
            f"{', '.join(missing)} (changing needs update:actions, deploying create:actions): "
            f"{grant}"
        )
    return f"{_count(len(found), 'action')} readable, and the token may change and deploy them"


def _targets(hooks: str | None, actions: str | None) -> str:
    """Which kinds of target the request form will offer, from the two probes above."""
    offered = [kind for kind, probe in (("actions", actions), ("hooks", hooks)) if probe]
    if not offered:
        raise CheckFailed("the tenant offers neither actions nor hooks to this application")
    return "the request form offers " + " and ".join(offered)


def _database(url: str) -> str:
    sqlite_file = sqlite_path(url)
    if sqlite_file is not None and not sqlite_file.exists():
        # Never create it here: an empty file would later read as an empty audit trail.
        return _future_sqlite_file(sqlite_file)
    store = Store(url)
    try:
        if not store.ping(schema=False):
            raise CheckFailed("the database does not answer; check DATABASE_URL")
        migrated = store.ping()
    finally:
        store.close()
    return "answers" + ("" if migrated else " (empty: `run` creates the schema on start)")


def _future_sqlite_file(path: Path) -> str:
    """A SQLite file that does not exist yet is fine if `run` may create it."""
    if not path.parent.is_dir():
        raise CheckFailed(f"directory {path.parent} does not exist: create it or fix DATABASE_URL")
    if not os.access(path.parent, os.W_OK):
        raise CheckFailed(
            f"directory {path.parent} is not writable: `run` could not create {path.name} there; "
            "fix its permissions or DATABASE_URL"
        )
    return f"no database yet at {path}: `run` creates it on first start"


def _slack_problem(error: SlackApiError) -> str:
    code = str(error.response.get("error"))
    hint = {
        "invalid_auth": "SLACK_BOT_TOKEN is wrong or revoked",
        "not_authed": "SLACK_BOT_TOKEN is missing",
        "account_inactive": "the app was uninstalled or its bot deactivated; reinstall it",
        "channel_not_found": "the channel id is wrong, or it is private and the bot is not in "
        "it: invite the bot with /invite @hook-secret-bot",
        "no_such_subteam": "no user group has that id; check the S… ids in the settings",
        "missing_scope": "reinstall the app from manifest.yaml to grant its scopes",
    }.get(code, "see https://api.slack.com/methods for this error")
    needed = error.response.get("needed")
    scope = f" (needs {needed})" if needed else ""
    return f"Slack said {code}{scope}: {hint}"
