"""``hook-secret-bot check`` against the Slack stand-in and the Auth0 sandbox."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.ops.check import run_checks
from bot.settings import Mode, load_app_settings
from standins.auth0 import DEFAULT_SCOPES, FULL_SCOPES, Auth0Sandbox
from standins.auth0_actions import ACTION_SCOPES
from standins.slack import SlackStandIn
from tests.harness.process import BOT_TOKEN, CLIENT_SECRET, SIGNING_SECRET, bot_env, free_port

APPROVALS = "C0APPROVE"
CHECKS = [
    "settings",
    "slack auth.test",
    "slack transport",
    "slack read-back",
    "approval channel",
    "requesters",
    "approvers",
    "auth0 token",
    "auth0 GET /api/v2/hooks",
    "auth0 GET /api/v2/actions/actions",
    "auth0 targets",
    "database",
]


@dataclass
class Tenant:
    """The stand-ins a check talks to, set up as a healthy installation."""

    slack: SlackStandIn
    auth0: Auth0Sandbox
    db_url: str

    def check(self, **overrides: Any) -> tuple[int, str]:
        """Run the checks in process; the exit status and what they printed."""
        values: dict[str, Any] = {
            "slack_bot_token": BOT_TOKEN,
            "slack_signing_secret": SIGNING_SECRET,
            "slack_api_url": self.slack.api_url,
            "auth0_domain": self.auth0.domain,
            "auth0_client_id": self.auth0.client_id,
            "auth0_client_secret": CLIENT_SECRET,
            "auth0_base_url": self.auth0.url,
            "hook_secret_requesters": "U0REQ,S0REQS",
            "hook_secret_approvers": "U0APP,S0APPS",
            "hook_secret_approval_channel": APPROVALS,
            "database_url": self.db_url,
        }
        values.update(overrides)
        settings = load_app_settings(Mode.CHECK, _env_file=None, **values)
        out = io.StringIO()
        status = run_checks(settings, out)
        printed = out.getvalue()
        assert BOT_TOKEN not in printed and CLIENT_SECRET not in printed
        return status, printed


def _line(printed: str, name: str) -> str:
    return next(line for line in printed.splitlines() if line[5:].startswith(name + ":"))


@pytest.fixture
def tenant(sqlite_url: str) -> Iterator[Tenant]:
    """A workspace with the bot in the approval channel and populated groups, and a tenant."""
    # The grant CONTRACT §2 asks for: hooks and actions.
    with SlackStandIn(bot_token=BOT_TOKEN) as slack, Auth0Sandbox(scopes=FULL_SCOPES) as auth0:
        slack.add_user("U0REQ", "rita")
        slack.add_user("U0APP", "alex")
        slack.add_channel(APPROVALS, "secret-approvals")
        slack.add_usergroup("S0REQS", "requesters", ["U0GUS"])
        slack.add_usergroup("S0APPS", "approvers", ["U0BEA", "U0APP"])
        auth0.add_hook("Client Credentials Exchange")
        auth0.actions.add("Enrich tokens", {"API_KEY": "x"})
        yield Tenant(slack, auth0, sqlite_url)


def test_all_checks_pass_with_one_ok_line_each(tmp_path: Path, tenant: Tenant) -> None:
    """The console script exits 0 and prints one ``ok`` line per check, without secrets."""
    env = bot_env(
        tenant.slack,
        tenant.auth0,
        tenant.db_url,
        HOOK_SECRET_REQUESTERS="U0REQ,S0REQS",
        HOOK_SECRET_APPROVERS="U0APP,S0APPS",
    )
    done = subprocess.run(
        [sys.executable, "-m", "bot", "check"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(":")[0][5:] for line in lines] == CHECKS
    assert all(line.startswith("ok   ") for line in lines)
    assert "2 people from 1 group" in _line(done.stdout, "approvers")
    assert "1 hook readable" in _line(done.stdout, "auth0 GET /api/v2/hooks")
    assert "1 action readable" in _line(done.stdout, "auth0 GET /api/v2/actions/actions")
    assert "offers actions and hooks" in _line(done.stdout, "auth0 targets")
    for secret in (BOT_TOKEN, CLIENT_SECRET, SIGNING_SECRET, env["HOOK_SECRET_ENCRYPTION_KEY"]):
        assert secret not in done.stdout + done.stderr


def test_the_optional_history_scopes_are_reported_on_or_off(tenant: Tenant) -> None:
    """The read-back line says whether a post a crash cut off can be found (history scopes
    granted) or may show twice, naming the scopes to grant; either way the check passes."""
    status, printed = tenant.check()
    line = _line(printed, "slack read-back")
    assert status == 0 and line.startswith("ok") and "may show twice" in line
    assert "channels:history, groups:history, im:history" in line
    tenant.slack.grant("channels:history", "groups:history", "im:history")
    status, printed = tenant.check()
    assert status == 0 and "looked for before" in _line(printed, "slack read-back")


def test_a_missing_auth0_scope_is_named(tenant: Tenant) -> None:
    """A token without delete:hooks fails the token check, naming the scope and where to grant."""
    tenant.auth0.set_scopes("read:hooks", "create:hooks", "update:hooks")
    status, printed = tenant.check()
    assert status == 1
    line = _line(printed, "auth0 token")
    assert line.startswith("FAIL") and "delete:hooks" in line and "Management API" in line
    assert "read:hooks" not in line.split("lacks")[1]
    assert _line(printed, "auth0 GET /api/v2/hooks").startswith("ok")


def test_a_token_without_read_hooks_fails_both_auth0_checks(tenant: Tenant) -> None:
    """Without read:hooks the token check names it and GET /api/v2/hooks is refused."""
    tenant.auth0.set_scopes("create:hooks", "update:hooks", "delete:hooks")
    status, printed = tenant.check()
    assert status == 1
    assert "read:hooks" in _line(printed, "auth0 token")
    hooks = _line(printed, "auth0 GET /api/v2/hooks")
    assert hooks.startswith("FAIL") and "read:hooks" in hooks


def test_hooks_disabled_on_the_tenant_says_so(tenant: Tenant) -> None:
    """A tenant with Hooks switched off passes: GET /api/v2/hooks is an ok line saying there are
    none (retired) and that the form offers actions."""
    tenant.auth0.hooks_disabled = True
    status, printed = tenant.check()
    assert status == 0, printed
    line = _line(printed, "auth0 GET /api/v2/hooks")
    assert line == (
        "ok   auth0 GET /api/v2/hooks: none on this tenant (retired 2026-11-18); "
        "the form offers actions"
    )
    assert _line(printed, "auth0 targets") == "ok   auth0 targets: the request form offers actions"


def test_wrong_client_secret_fails_without_printing_it(tenant: Tenant) -> None:
    """Auth0 refusing the client credentials fails the token check and never echoes the secret."""
    wrong = "not-the-sandbox-client-secret-42"
    status, printed = tenant.check(auth0_client_secret=wrong)
    assert status == 1
    assert _line(printed, "auth0 token").startswith("FAIL")
    assert "AUTH0_CLIENT_SECRET" in _line(printed, "auth0 token")
    assert wrong not in printed


def test_the_bot_outside_the_approval_channel_is_told_to_invite_it(tenant: Tenant) -> None:
    """The approval channel check fails when the bot is not a member, saying to invite it."""
    tenant.slack.add_channel(APPROVALS, "secret-approvals", bot_is_member=False)
    status, printed = tenant.check()
    assert status == 1
    line = _line(printed, "approval channel")
    assert line.startswith("FAIL") and "/invite" in line and APPROVALS in line


def test_an_empty_user_group_fails(tenant: Tenant) -> None:
    """An approver group with no members fails the approvers check, naming the group."""
    tenant.slack.set_group_members("S0APPS", [])
    status, printed = tenant.check(hook_secret_approvers="S0APPS")
    assert status == 1
    line = _line(printed, "approvers")
    assert line.startswith("FAIL") and "S0APPS" in line and "no members" in line
    assert _line(printed, "requesters").startswith("ok")


def test_a_wrong_bot_token_fails_without_printing_it(tenant: Tenant) -> None:
    """Slack refusing the bot token fails auth.test with a hint and never echoes the token."""
    wrong = "xoxb-wrong-token-000000000000"
    status, printed = tenant.check(slack_bot_token=wrong)
    assert status == 1
    line = _line(printed, "slack auth.test")
    assert line.startswith("FAIL") and "invalid_auth" in line and "SLACK_BOT_TOKEN" in line
    assert wrong not in printed


def test_http_mode_without_a_signing_secret_fails_the_transport_check(tenant: Tenant) -> None:
    """Without SLACK_APP_TOKEN, a missing SLACK_SIGNING_SECRET is reported by name."""
    status, printed = tenant.check(slack_signing_secret=None)
    assert status == 1
    assert "SLACK_SIGNING_SECRET" in _line(printed, "slack transport")


def test_socket_mode_checks_the_app_level_token(sqlite_url: str) -> None:
    """With SLACK_APP_TOKEN, the transport check asks apps.connections.open and names failures."""
    app_token = "xapp-1-A0APP-check-token-0123456789"
    with (
        SlackStandIn(bot_token=BOT_TOKEN, app_token=app_token) as slack,
        Auth0Sandbox(scopes=FULL_SCOPES) as auth0,
    ):
        slack.add_channel(APPROVALS, "secret-approvals")
        tenant = Tenant(slack, auth0, sqlite_url)
        status, printed = tenant.check(
            slack_app_token=app_token, hook_secret_requesters="U0REQ", hook_secret_approvers="U0APP"
        )
        assert status == 0, printed
        assert "Socket Mode" in _line(printed, "slack transport")
        assert [c.method for c in slack.calls_to("apps.connections.open")] == [
            "apps.connections.open"
        ]
        wrong = "xapp-1-A0APP-wrong-token-0000000000"
        status, printed = tenant.check(
            slack_app_token=wrong, hook_secret_requesters="U0REQ", hook_secret_approvers="U0APP"
        )
        assert status == 1 and wrong not in printed
        assert "invalid_auth" in _line(printed, "slack transport")


def _check_process(env: dict[str, str], cwd: Path) -> tuple[int, list[str], str]:
    """``hook-secret-bot check`` as a subprocess: status, its lines, and what went to stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "bot", "check"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    return done.returncode, done.stdout.splitlines(), done.stderr


def _only_check_lines(lines: list[str], stderr: str) -> None:
    """Nothing but check's own lines: no JSON log line, no traceback, on either stream."""
    assert stderr == ""
    assert lines and all(line.startswith(("ok   ", "FAIL ", "skip ")) for line in lines), lines


@pytest.mark.parametrize(
    ("where", "variable", "why"),
    [
        ({"AUTH0_DOMAIN": "tenant.invalid", "AUTH0_BASE_URL": ""}, "AUTH0_DOMAIN", "resolve"),
        ({"AUTH0_BASE_URL": "closed"}, "AUTH0_BASE_URL", "refuses connections"),
    ],
)
def test_an_auth0_that_cannot_be_reached_names_its_variable(
    tmp_path: Path, tenant: Tenant, where: dict[str, str], variable: str, why: str
) -> None:
    """A domain that does not resolve, or a base URL nothing listens on, fails the token line
    naming the variable to fix; the Auth0 lines after it are skipped with that reason, with
    only check's lines in the output."""
    if where.get("AUTH0_BASE_URL") == "closed":
        where = {"AUTH0_BASE_URL": f"http://127.0.0.1:{free_port()}"}
    env = bot_env(tenant.slack, tenant.auth0, tenant.db_url, **where)
    status, lines, stderr = _check_process(env, tmp_path)
    assert status == 1
    _only_check_lines(lines, stderr)
    token = _line("\n".join(lines), "auth0 token")
    assert token.startswith("FAIL") and variable in token and why in token, token
    for name in ("auth0 GET /api/v2/hooks", "auth0 GET /api/v2/actions/actions"):
        line = _line("\n".join(lines), name)
        assert line.startswith("skip") and "Auth0 could not be reached" in line, line
        assert variable in line and why in line, line
    assert _line("\n".join(lines), "slack auth.test").startswith("ok")


def test_a_slack_that_cannot_be_reached_names_slack_api_url(tmp_path: Path, tenant: Tenant) -> None:
    """Nothing listening at SLACK_API_URL fails auth.test naming the variable and the network."""
    env = bot_env(tenant.slack, tenant.auth0, tenant.db_url)
    env["SLACK_API_URL"] = f"http://127.0.0.1:{free_port()}/api/"
    status, lines, stderr = _check_process(env, tmp_path)
    assert status == 1
    _only_check_lines(lines, stderr)
    line = _line("\n".join(lines), "slack auth.test")
    assert line.startswith("FAIL") and "SLACK_API_URL" in line and "reach" in line, line
    assert "URLError" not in line


def test_check_never_creates_the_database(tmp_path: Path, tenant: Tenant) -> None:
    """A SQLite file that does not exist yet is reported, not created; audit verify then still
    says there is no database rather than reading an empty one."""
    database = tmp_path / "data" / "fresh.db"
    database.parent.mkdir()
    env = bot_env(
        tenant.slack,
        tenant.auth0,
        f"sqlite:///{database}",
        HOOK_SECRET_REQUESTERS="U0REQ,S0REQS",
        HOOK_SECRET_APPROVERS="U0APP,S0APPS",
    )
    status, lines, stderr = _check_process(env, tmp_path)
    assert status == 0, lines
    _only_check_lines(lines, stderr)
    line = _line("\n".join(lines), "database")
    assert "no database yet" in line and "`run` creates it" in line
    assert list(database.parent.iterdir()) == []
    verify = subprocess.run(
        [sys.executable, "-m", "bot", "audit", "verify"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert verify.returncode == 3 and "no database file" in verify.stderr


def test_a_sqlite_file_in_a_missing_directory_fails_naming_database_url(tenant: Tenant) -> None:
    """A DATABASE_URL whose directory does not exist fails the database line with the fix."""
    status, printed = tenant.check(database_url="sqlite:////nonexistent-dir/x/bot.db")
    assert status == 1
    line = _line(printed, "database")
    assert line.startswith("FAIL") and "DATABASE_URL" in line and "does not exist" in line


def test_counts_read_as_english(tenant: Tenant) -> None:
    """One person and one hook are counted in the singular."""
    status, printed = tenant.check(hook_secret_requesters="U0REQ", hook_secret_approvers="U0APP")
    assert status == 0, printed
    assert _line(printed, "requesters").endswith(": 1 person")
    assert _line(printed, "auth0 GET /api/v2/hooks").endswith(": 1 hook readable")


def test_missing_action_scopes_are_named_and_hooks_are_still_offered(tenant: Tenant) -> None:
    """A hooks-only grant passes: the actions line names every action scope to grant to offer
    actions, and the form offers hooks only."""
    tenant.auth0.set_scopes("read:hooks", "create:hooks", "update:hooks", "delete:hooks")
    status, printed = tenant.check()
    assert status == 0, printed
    line = _line(printed, "auth0 GET /api/v2/actions/actions")
    assert line.startswith("ok") and "Management API" in line
    assert all(s in line for s in ("read:actions", "update:actions", "create:actions"))
    assert line.endswith("; the form offers hooks")
    assert _line(printed, "auth0 targets") == "ok   auth0 targets: the request form offers hooks"


def test_an_application_that_cannot_deploy_is_told_it_needs_create_actions(
    tenant: Tenant,
) -> None:
    """read and update without create: actions are readable but could never be deployed."""
    hooks = ("read:hooks", "create:hooks", "update:hooks", "delete:hooks")
    tenant.auth0.set_scopes(*hooks, "read:actions", "update:actions")
    status, printed = tenant.check()
    assert status == 1
    line = _line(printed, "auth0 GET /api/v2/actions/actions")
    assert line.startswith("FAIL") and "create:actions" in line and "1 action readable" in line
    assert "read:actions," not in line


# -- a tenant needs one kind of target: `check` as a user runs it -----------------------------


def _tenant_env(tmp_path: Path, slack: SlackStandIn, auth0: Auth0Sandbox) -> dict[str, str]:
    slack.add_user("U0REQ", "rita")
    slack.add_user("U0APP", "alex")
    slack.add_channel(APPROVALS, "secret-approvals")
    return bot_env(slack, auth0, f"sqlite:///{tmp_path / 'bot.db'}")


@pytest.mark.parametrize(
    ("scopes", "hooks_on_tenant", "offers"),
    [
        (ACTION_SCOPES, False, "actions"),
        (DEFAULT_SCOPES, True, "hooks"),
        (FULL_SCOPES, True, "actions and hooks"),
        (FULL_SCOPES, False, "actions"),
    ],
    ids=["actions-only", "hooks-only", "both", "all-scopes-no-hooks"],
)
def test_one_kind_of_target_is_enough_to_pass(
    tmp_path: Path, scopes: tuple[str, ...], hooks_on_tenant: bool, offers: str
) -> None:
    """An Actions-only tenant with an Actions-only application, an application with only the
    hook scopes on a tenant with hooks, or both: every line ok, exit 0; the token line lists
    the scopes granted, and the kind that is missing says what the form offers instead."""
    with SlackStandIn(bot_token=BOT_TOKEN) as slack, Auth0Sandbox(scopes=scopes) as auth0:
        auth0.hooks_disabled = not hooks_on_tenant
        if hooks_on_tenant:
            auth0.add_hook("Client Credentials Exchange")
        auth0.actions.add("Enrich tokens", {"API_KEY": "x"})
        status, lines, stderr = _check_process(_tenant_env(tmp_path, slack, auth0), tmp_path)
    printed = "\n".join(lines)
    assert status == 0, printed
    _only_check_lines(lines, stderr)
    assert [line.split(":")[0][5:] for line in lines] == CHECKS
    assert all(line.startswith("ok   ") for line in lines), printed
    assert _line(printed, "auth0 token") == "ok   auth0 token: token issued with " + " ".join(
        [s for s in ACTION_SCOPES + DEFAULT_SCOPES if s in scopes]
    )
    assert _line(printed, "auth0 targets").endswith(f": the request form offers {offers}")
    hooks = _line(printed, "auth0 GET /api/v2/hooks")
    actions = _line(printed, "auth0 GET /api/v2/actions/actions")
    if not hooks_on_tenant:
        assert hooks.endswith(": none on this tenant (retired 2026-11-18); the form offers actions")
    elif "read:hooks" not in scopes:
        assert hooks.endswith(": not granted to this application; the form offers actions")
    if "read:actions" not in scopes:
        assert "not granted to this application" in actions
        assert actions.endswith("; the form offers hooks")


def test_neither_kind_fails_with_what_to_grant(tmp_path: Path) -> None:
    """No Hooks on the tenant and no action scope: the targets line fails, naming the action
    scopes to grant; the hooks line still only says there are none."""
    with SlackStandIn(bot_token=BOT_TOKEN) as slack, Auth0Sandbox(scopes=DEFAULT_SCOPES) as auth0:
        auth0.hooks_disabled = True
        status, lines, stderr = _check_process(_tenant_env(tmp_path, slack, auth0), tmp_path)
    printed = "\n".join(lines)
    assert status == 1
    _only_check_lines(lines, stderr)
    assert _line(printed, "auth0 GET /api/v2/hooks").startswith("ok   ")
    targets = _line(printed, "auth0 targets")
    assert targets.startswith("FAIL") and "would offer nothing" in targets
    assert "read:actions, update:actions, create:actions" in targets


def test_an_unreachable_auth0_skips_what_depends_on_it(tmp_path: Path) -> None:
    """Nothing listening at AUTH0_BASE_URL: the token line fails naming it, the hooks, actions
    and targets lines are skipped with the reason (no conclusion about targets), every check
    still has its line, and the exit status is 1."""
    with SlackStandIn(bot_token=BOT_TOKEN) as slack, Auth0Sandbox(scopes=FULL_SCOPES) as auth0:
        env = _tenant_env(tmp_path, slack, auth0)
        env["AUTH0_BASE_URL"] = f"http://127.0.0.1:{free_port()}"
        status, lines, stderr = _check_process(env, tmp_path)
    printed = "\n".join(lines)
    assert status == 1
    _only_check_lines(lines, stderr)
    assert [line.split(":")[0][5:] for line in lines] == CHECKS
    for name in ("auth0 GET /api/v2/hooks", "auth0 GET /api/v2/actions/actions", "auth0 targets"):
        line = _line(printed, name)
        assert line.startswith(f"skip {name}: Auth0 could not be reached"), line
    assert "offers" not in _line(printed, "auth0 targets")
    assert "neither" not in printed
    assert _line(printed, "database").startswith("ok   ")


def test_an_unreachable_slack_skips_what_depends_on_it(tmp_path: Path) -> None:
    """Nothing listening at SLACK_API_URL: the checks that need Slack are skipped, each on its
    own line with the reason, rather than left out."""
    with SlackStandIn(bot_token=BOT_TOKEN) as slack, Auth0Sandbox(scopes=FULL_SCOPES) as auth0:
        auth0.add_hook("Client Credentials Exchange")
        env = _tenant_env(tmp_path, slack, auth0)
        env["SLACK_API_URL"] = f"http://127.0.0.1:{free_port()}/api/"
        status, lines, stderr = _check_process(env, tmp_path)
    printed = "\n".join(lines)
    assert status == 1
    _only_check_lines(lines, stderr)
    assert [line.split(":")[0][5:] for line in lines] == CHECKS
    for name in ("slack read-back", "approval channel", "requesters", "approvers"):
        assert _line(printed, name) == f"skip {name}: needs slack auth.test to pass (see above)"
    assert _line(printed, "auth0 targets").startswith("ok   ")
