"""``hook-secret-bot check``: settings and connectivity, one line per check with a fix hint."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.approvals.policy import Principals
from bot.auth0.errors import Auth0Error
from bot.auth0.transport import Auth0Transport
from bot.db.engine import sqlite_path
from bot.db.store import Store
from bot.logs import SECRETS
from bot.ops.check_auth0 import Where, auth0_checks, count
from bot.ops.check_lines import FAIL, OK, SKIP, Check, CheckFailed
from bot.outbox.readback import SCOPES as READ_BACK_SCOPES
from bot.serve.problems import slack_unreachable, sqlite_file_problem
from bot.serve.runtime import auth0_client, register_settings_secrets, slack_client
from bot.settings import Settings, SlackSettings


def run_checks(
    settings: Settings,
    out: TextIO | None = None,
    slack: WebClient | None = None,
    auth0: Auth0Transport | None = None,
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


def _checks(settings: Settings, slack: WebClient, auth0: Auth0Transport) -> list[Check]:
    results = [Check(OK, "settings", "all variables valid")]
    slack_checks(results, settings, slack, lambda team: _slack_dependents(settings, slack, team))
    results.extend(auth0_checks(Where.of_settings(settings), auth0))
    run_probe(results, "database", lambda: database_probe(settings.database_url))
    return results


Probes = list[tuple[str, Callable[[], str]]]


def slack_checks(
    results: list[Check],
    settings: SlackSettings,
    slack: WebClient,
    dependents: Callable[[str], Probes],
) -> None:
    """Slack's lines: auth.test, the transport, then the checks that need Slack to know the
    bot (``dependents`` of its team id), each skipped when auth.test fails."""
    team_id = run_probe(
        results, "slack auth.test", reaching_slack(settings, lambda: slack_auth(slack))
    )
    run_probe(
        results, "slack transport", reaching_slack(settings, lambda: slack_transport(settings))
    )
    for name, probe in dependents(team_id or ""):
        if team_id:
            run_probe(results, name, probe)
        else:
            results.append(Check(SKIP, name, "needs slack auth.test to pass (see above)"))


def _slack_dependents(
    settings: Settings, slack: WebClient, team_id: str
) -> list[tuple[str, Callable[[], str]]]:
    """The checks that need Slack to know the bot: the ones the settings call for."""
    probes: list[tuple[str, Callable[[], str]]] = [("slack read-back", lambda: read_back(slack))]
    channel = settings.hook_secret_approval_channel
    if channel:
        probes.append(("approval channel", lambda: channel_probe(slack, channel)))
    for label, ids in (
        ("requesters", settings.hook_secret_requesters),
        ("approvers", settings.hook_secret_approvers),
    ):
        if ids:
            probes.append((label, people_probe(slack, team_id, ids)))
    return probes


def run_probe(results: list[Check], name: str, probe: Callable[[], str]) -> str | None:
    try:
        detail = probe()
    except CheckFailed as failure:
        results.append(Check(FAIL, name, str(failure)))
        return None
    except Auth0Error as error:
        results.append(Check(FAIL, name, error.message))
        return None
    except SlackApiError as error:
        results.append(Check(FAIL, name, _slack_problem(error)))
        return None
    except Exception as error:  # one line per check: a crash is that check failing
        results.append(Check(FAIL, name, f"{type(error).__name__}: {error}"))
        return None
    results.append(Check(OK, name, detail))
    return detail


def reaching_slack(settings: SlackSettings, probe: Callable[[], str]) -> Callable[[], str]:
    """``probe``, with a Slack that can't be reached named by its variable and the network."""

    def reached() -> str:
        try:
            return probe()
        except (URLError, OSError) as error:
            raise CheckFailed(slack_unreachable(settings, error)) from None

    return reached


def slack_auth(slack: WebClient) -> str:
    response = slack.auth_test()
    return f"{response['team_id']} ({response.get('team')}, bot {response.get('user_id')})"


def read_back(slack: WebClient) -> str:
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


def slack_transport(settings: SlackSettings) -> str:
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


def channel_probe(slack: WebClient, channel: str) -> str:
    info = slack.conversations_info(channel=channel)["channel"]
    if not info.get("is_member"):
        raise CheckFailed(
            f"the bot is not a member of {channel}: invite it there with /invite @hook-secret-bot"
        )
    return f"bot is a member of #{info.get('name', channel)}"


def people_probe(slack: WebClient, team_id: str, ids: list[str]) -> Callable[[], str]:
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
        groups = f" from {count(len(principals.groups), 'group')}" if principals.groups else ""
        return ("1 person" if len(people) == 1 else f"{len(people)} people") + groups

    return probe


def database_probe(url: str) -> str:
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
    problem = sqlite_file_problem(path)
    if problem:
        raise CheckFailed(problem)
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
