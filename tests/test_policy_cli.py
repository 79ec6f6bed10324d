"""``HOOK_SECRET_POLICY_FILE`` as an operator meets it: ``policy``, ``check`` and ``run`` in a
subprocess, with the file and the environment (or ``.env``), against two Auth0 sandboxes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.db.encryption import generate_key
from bot.slack import ids
from standins.auth0 import FULL_SCOPES, Auth0Sandbox
from standins.slack import SlackDriver, SlackStandIn
from tests.conftest import NO_PG, PG_URL, pg_schema
from tests.harness.people import BOT_TOKEN, REPO, SIGNING_SECRET, free_port
from tests.harness.process import BotProcess, running, running_many
from tests.waiting import wait_until

PROD_SECRET = "prod-client-secret-0123456789"
DEV_SECRET = "dev-client-secret-9876543210"
EXCLUDED = [
    "AUTH0_DOMAIN",
    "AUTH0_CLIENT_ID",
    "AUTH0_CLIENT_SECRET",
    "AUTH0_BASE_URL",
    "HOOK_SECRET_REQUESTERS",
    "HOOK_SECRET_APPROVERS",
    "HOOK_SECRET_APPROVAL_CHANNEL",
    "HOOK_SECRET_REQUIRED_APPROVALS",
]
RULES = """
[[rules]]
name = "dev self-service"
tenant = "dev"
requesters = ["S0ENGINEERS"]
approvals = 0

[[rules]]
name = "payments"
tenant = "prod"
targets = ["payments-*"]
requesters = ["S0PAYMENTS"]
channel = "C0PAYMENTS"
approvals = [ { from = ["S0SECURITY"], count = 1 }, { from = ["U0LEAD1", "U0LEAD2"], count = 1 } ]

[[rules]]
name = "prod"
tenant = "prod"
targets = ["action:*"]
requesters = ["S0ENGINEERS", "U0RITA"]
approvers = ["S0SECURITY"]
channel = "C0PRODAPPROVALS"
approvals = 2
ttl = 3600
"""


@dataclass
class Setup:
    """Two tenants (prod with actions and a hook, dev with an action), a workspace, a file."""

    prod: Auth0Sandbox
    dev: Auth0Sandbox
    slack: SlackStandIn
    cwd: Path
    ids: dict[str, str]

    def policy_file(self, rules: str = RULES, dev_url: str | None = None) -> None:
        """Write ``policy.toml`` in the working directory, pointed at the sandboxes."""
        tenants = _tenant("prod", self.prod, "AUTH0_PROD_CLIENT_SECRET") + _tenant(
            "dev", self.dev, "AUTH0_DEV_CLIENT_SECRET", dev_url
        )
        (self.cwd / "policy.toml").write_text(tenants + rules)

    def env(self, **extra: str) -> dict[str, str]:
        """The Slack and store variables, the file, and prod's client secret (dev's is in
        ``.env`` only)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(_SETTINGS_PREFIXES)}
        env.update(
            PYTHONPATH=str(REPO),
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=self.slack.api_url,
            HOOK_SECRET_POLICY_FILE="policy.toml",
            HOOK_SECRET_ENCRYPTION_KEY=generate_key(),
            DATABASE_URL=f"sqlite:///{self.cwd / 'bot.db'}",
            PORT=str(free_port()),
            AUTH0_PROD_CLIENT_SECRET=PROD_SECRET,
        )
        env.update(extra)
        return env

    def cli(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``python -m bot ARGS`` in the working directory; nothing it prints holds a secret."""
        done = subprocess.run(
            [sys.executable, "-m", "bot", *args],
            env=self.env() if env is None else env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        for secret in (PROD_SECRET, DEV_SECRET, BOT_TOKEN, SIGNING_SECRET):
            assert secret not in done.stdout + done.stderr
        assert "Traceback" not in done.stderr, done.stderr
        return done


_SETTINGS_PREFIXES = ("SLACK_", "AUTH0_", "HOOK_SECRET_", "DATABASE_URL", "PORT", "LOG_")


def _tenant(name: str, sandbox: Auth0Sandbox, secret_env: str, url: str | None = None) -> str:
    return (
        f"[tenants.{name}]\n"
        f'domain = "{sandbox.domain}"\n'
        f'client_id = "{sandbox.client_id}"\n'
        f'client_secret_env = "{secret_env}"\n'
        f'base_url = "{url or sandbox.url}"\n\n'
    )


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    """prod: two actions and a hook; dev: one action and no hooks; dev's secret in .env."""
    prod = Auth0Sandbox("prod.auth0.local", "prod-client", PROD_SECRET, scopes=FULL_SCOPES)
    dev = Auth0Sandbox("dev.auth0.local", "dev-client", DEV_SECRET, scopes=FULL_SCOPES)
    with prod, dev, SlackStandIn(bot_token=BOT_TOKEN) as slack:
        dev.hooks_disabled = True
        ids = {
            "payments": prod.actions.add("payments-capture", {"STRIPE_KEY": "x"}),
            "enrich": prod.actions.add("enrich-profile", {"API_KEY": "x"}),
            "hook": prod.add_hook("Client Credentials Exchange"),
            "dev": dev.actions.add("enrich-profile", {"API_KEY": "x"}),
        }
        for user in ("U0RITA", "U0SAM", "U0LEAD1", "U0LEAD2"):
            slack.add_user(user, user.lower())
        slack.add_usergroup("S0ENGINEERS", "engineers", ["U0RITA", "U0SAM"])
        slack.add_usergroup("S0PAYMENTS", "payments", ["U0SAM"])
        slack.add_usergroup("S0SECURITY", "security", ["U0SEC1", "U0SEC2"])
        slack.add_channel("C0GENERAL", "general")
        slack.add_channel("C0PAYMENTS", "payments-approvals")
        slack.add_channel("C0PRODAPPROVALS", "prod-approvals")
        (tmp_path / ".env").write_text(f"AUTH0_DEV_CLIENT_SECRET={DEV_SECRET}\n")
        found = Setup(prod, dev, slack, tmp_path, ids)
        found.policy_file()
        yield found


def _json_lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_policy_json_lists_each_target_with_its_rule(setup: Setup) -> None:
    """One object per target with exactly the contract's keys: tenants in file order, the
    first matching rule, requesters as listed, approvals as a number or quorum terms, and
    ``null`` for a target no rule covers; dev's client secret comes from ``.env`` only."""
    done = setup.cli("policy", "--json")
    assert done.returncode == 0, done.stderr
    ids = setup.ids
    quorum = [{"from": ["S0SECURITY"], "count": 1}, {"from": ["U0LEAD1", "U0LEAD2"], "count": 1}]
    prod_requesters = ["S0ENGINEERS", "U0RITA"]
    assert _json_lines(done.stdout) == [
        _row("prod", "action", ids["enrich"], "enrich-profile", "prod", prod_requesters, 2),
        _row(
            "prod",
            "action",
            ids["payments"],
            "payments-capture",
            "payments",
            ["S0PAYMENTS"],
            quorum,
        ),
        _row("prod", "hook", ids["hook"], "Client Credentials Exchange", None, [], None),
        _row("dev", "action", ids["dev"], "enrich-profile", "dev self-service", ["S0ENGINEERS"], 0),
    ]
    assert done.stderr == ""


def _row(
    tenant: str,
    kind: str,
    id_: str,
    name: str,
    rule: str | None,
    requesters: list[str],
    approvals: Any,
) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "kind": kind,
        "id": id_,
        "name": name,
        "rule": rule,
        "requesters": requesters,
        "approvals": approvals,
    }


def test_policy_text_says_who_may_request_and_what_is_not_requestable(setup: Setup) -> None:
    """Without --json: a line per target naming the tenant, the rule, the requesters and the
    approvals; a target no rule covers says it is not requestable."""
    done = setup.cli("policy")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 4
    assert lines[1].startswith("prod · action payments-capture (")
    assert 'rule "payments"; requested by S0PAYMENTS' in lines[1]
    assert "1 of S0SECURITY and 1 of U0LEAD1, U0LEAD2" in lines[1] and "C0PAYMENTS" in lines[1]
    assert "2 of S0SECURITY" in lines[0]
    assert lines[2].endswith("not requestable: no rule covers it")
    assert lines[3].startswith("dev · action enrich-profile") and "no approval" in lines[3]


def test_policy_exits_1_when_a_tenant_is_down_and_still_shows_the_others(setup: Setup) -> None:
    """dev's Auth0 answers nowhere: prod's targets are printed, dev's problem goes to stderr
    naming the tenant and where it was looked for, and the exit status is 1."""
    nowhere = f"http://127.0.0.1:{free_port()}"
    setup.policy_file(dev_url=nowhere)
    done = setup.cli("policy", "--json")
    assert done.returncode == 1
    assert [row["tenant"] for row in _json_lines(done.stdout)] == ["prod", "prod", "prod"]
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"dev: cannot read the tenant: cannot reach {nowhere}: ")
    assert line.endswith(
        "refuses connections on port "
        + nowhere.rsplit(":", 1)[1]
        + (": check tenants.dev.base_url in HOOK_SECRET_POLICY_FILE")
    )


def test_policy_without_a_file_shows_the_default_tenant_and_rule(setup: Setup) -> None:
    """The one-tenant variables describe tenant ``default`` and rule ``default``; ``policy``
    needs no Slack settings."""
    env = {
        k: v
        for k, v in setup.env().items()
        if not k.startswith(("SLACK_", "HOOK_SECRET_POLICY_FILE"))
    }
    env.update(
        AUTH0_DOMAIN=setup.dev.domain,
        AUTH0_CLIENT_ID=setup.dev.client_id,
        AUTH0_CLIENT_SECRET=DEV_SECRET,
        AUTH0_BASE_URL=setup.dev.url,
        HOOK_SECRET_REQUESTERS="U0RITA,S0ENGINEERS",
        HOOK_SECRET_APPROVERS="S0SECURITY",
        HOOK_SECRET_APPROVAL_CHANNEL="C0PRODAPPROVALS",
    )
    done = setup.cli("policy", "--json", env=env)
    assert done.returncode == 0, done.stderr
    requesters = ["U0RITA", "S0ENGINEERS"]
    assert _json_lines(done.stdout) == [
        _row("default", "action", setup.ids["dev"], "enrich-profile", "default", requesters, 1)
    ]
    done = setup.cli("policy", "--json", env={**env, "HOOK_SECRET_REQUIRED_APPROVALS": "0"})
    assert _json_lines(done.stdout)[0]["approvals"] == 0
    nowhere = f"http://127.0.0.1:{free_port()}"
    done = setup.cli("policy", env={**env, "AUTH0_BASE_URL": nowhere})
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith(f"default: cannot read the tenant: cannot reach {nowhere}")
    assert done.stderr.rstrip().endswith("check AUTH0_BASE_URL")


BAD_FILE = """
[tenants.prod]
domain = "prod.auth0.local"
client_id = "prod-client"
client_secret_env = "AUTH0_NOWHERE_SECRET"
colour = "blue"

[[rules]]
tenant = "staging"
requesters = ["S0ENGINEERS"]
approvals = 0

[[rules]]
name = "prod"
tenant = "prod"
requesters = ["S0ENGINEERS"]
approvers = ["U0LEAD1"]
approvals = 1

[[rules]]
name = "late"
tenant = "prod"
targets = ["action:payments-*"]
requesters = ["U0RITA"]
approvals = 0
"""


@pytest.mark.parametrize("command", [["run"], ["check"], ["policy"], ["policy", "--json"]])
def test_a_bad_file_stops_every_command_with_every_problem(
    setup: Setup, command: list[str]
) -> None:
    """Each problem of the file is one ``HOOK_SECRET_POLICY_FILE:`` line naming its place, the
    same lines for run, check and policy, exit 2 and nothing on stdout."""
    (setup.cwd / "policy.toml").write_text(BAD_FILE)
    done = setup.cli(*command)
    assert (done.returncode, done.stdout) == (2, "")
    lines = done.stderr.splitlines()
    assert all(line.startswith("HOOK_SECRET_POLICY_FILE: ") for line in lines), lines
    places = [line.split(": ")[1] for line in lines]
    meaning = ["tenants.prod.client_secret_env", "rules[1].tenant", "rules[2].channel", "rules[3]"]
    assert places == ["tenants.prod.colour", *meaning], lines
    (setup.cwd / "policy.toml").write_text(BAD_FILE.replace('colour = "blue"\n', ""))
    lines = setup.cli(*command).stderr.splitlines()
    assert [line.split(": ")[1] for line in lines] == meaning, lines
    assert "AUTH0_NOWHERE_SECRET is unset or empty" in lines[0]
    assert '"staging"' in lines[1] and 'rule "prod" (rules[2])' in lines[3]


def test_settings_the_file_and_the_variables_are_one_round(setup: Setup) -> None:
    """A missing Slack token, a variable that must be unset and the file's problems all come
    in one round."""
    (setup.cwd / "policy.toml").write_text(BAD_FILE.replace('colour = "blue"\n', ""))
    env = setup.env(AUTH0_DOMAIN="acme.eu.auth0.com")
    del env["SLACK_BOT_TOKEN"]
    done = setup.cli("check", env=env)
    assert done.returncode == 2
    named = [line.split(":")[0] for line in done.stderr.splitlines()]
    assert named == ["SLACK_BOT_TOKEN", "AUTH0_DOMAIN"] + ["HOOK_SECRET_POLICY_FILE"] * 4


@pytest.mark.parametrize("command", [["run"], ["check"], ["policy"]])
def test_a_toml_syntax_error_names_its_line(setup: Setup, command: list[str]) -> None:
    """A file that is not TOML is one line with the line number; a missing file is one line."""
    (setup.cwd / "policy.toml").write_text('[tenants.prod]\ndomain = "x\n')
    done = setup.cli(*command)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith("HOOK_SECRET_POLICY_FILE: TOML syntax error") and "line 2" in line
    done = setup.cli(*command, env=setup.env(HOOK_SECRET_POLICY_FILE="missing.toml"))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "HOOK_SECRET_POLICY_FILE: cannot read missing.toml: No such file or directory"
    ]


@pytest.mark.parametrize("command", [["run"], ["check"], ["policy"]])
def test_the_one_tenant_variables_must_be_unset_with_a_file(
    setup: Setup, command: list[str]
) -> None:
    """Each of the eight variables set beside the file is a line naming it (exit 2), whether in
    the environment or in ``.env``; set empty, they count as unset."""
    values = dict.fromkeys(EXCLUDED, "U0RITA")
    half = len(EXCLUDED) // 2
    dotenv = setup.cwd / ".env"
    dotenv.write_text(
        dotenv.read_text() + "".join(f"{k}={v}\n" for k, v in list(values.items())[half:])
    )
    done = setup.cli(*command, env=setup.env(**dict(list(values.items())[:half])))
    assert done.returncode == 2
    named = [line.split(":")[0] for line in done.stderr.splitlines()]
    assert named == EXCLUDED, done.stderr
    assert all(
        "must be unset when HOOK_SECRET_POLICY_FILE is set" in line
        for line in done.stderr.splitlines()
    )
    dotenv.write_text(f"AUTH0_DEV_CLIENT_SECRET={DEV_SECRET}\n")
    if command == ["run"]:
        return  # with nothing set beside the file, run serves (test_run_serves_the_file…)
    empty = setup.env(**dict.fromkeys(EXCLUDED, ""))
    done = setup.cli(*command, env=empty)
    assert "must be unset" not in done.stderr


def test_a_client_secret_only_in_dotenv_is_used_and_the_environment_wins(setup: Setup) -> None:
    """dev's secret is in ``.env`` only and works; an empty value in the environment wins over
    ``.env`` and is a problem line, as for every setting."""
    assert setup.cli("policy", "--json").returncode == 0
    done = setup.cli("policy", env=setup.env(AUTH0_DEV_CLIENT_SECRET=""))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "HOOK_SECRET_POLICY_FILE: tenants.dev.client_secret_env: "
        "the variable AUTH0_DEV_CLIENT_SECRET is unset or empty"
    ]
    (setup.cwd / ".env").unlink()
    done = setup.cli("policy", env=setup.env(AUTH0_DEV_CLIENT_SECRET=DEV_SECRET))
    assert done.returncode == 0, done.stderr
    # The file's variable itself may live in .env too.
    (setup.cwd / ".env").write_text(
        f"HOOK_SECRET_POLICY_FILE=policy.toml\nAUTH0_DEV_CLIENT_SECRET={DEV_SECRET}\n"
    )
    env = setup.env()
    del env["HOOK_SECRET_POLICY_FILE"]
    done = setup.cli("policy", "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert [row["tenant"] for row in _json_lines(done.stdout)][-1] == "dev"


def test_run_serves_the_file_s_tenants_over_http(setup: Setup) -> None:
    """``hook-secret-bot run`` with the file, as a real process (dev's client secret only in
    ``.env``): the picker groups targets by tenant and offers only what a rule lets the person
    request; a dev self-service change lands in dev alone; its audit lines carry tenant and
    rule; SIGTERM ends it cleanly."""
    env = setup.env()
    with running(env, setup.cwd) as bot:
        driver = SlackDriver(setup.slack, bot.events_url, SIGNING_SECRET)
        try:
            mark = setup.slack.mark()
            assert driver.slash_command("U0RITA", "add", channel_id="C0GENERAL").status == 200
            setup.slack.wait_for("views.open", after=mark)
            view = setup.slack.wait_for_view("U0RITA", callback_id=ids.CALLBACK_ADD)
            ack = driver.block_suggestion("U0RITA", ids.BLOCK_HOOK, ids.BLOCK_HOOK, "", view)
            assert ack.status == 200 and not ack.problems, ack.body
            groups = ack.payload()["option_groups"]
            labels = [g["label"]["text"] for g in groups]
            assert labels == ["prod · Actions", "dev · Actions", "dev · Hooks"]
            # U0RITA is an engineer, not in payments: prod offers the enrich action only.
            prod_values = [o["value"] for o in groups[0]["options"]]
            assert prod_values == [f"prod/action:{setup.ids['enrich']}"]
            (dev_option,) = groups[1]["options"]
            assert dev_option["value"] == f"dev/action:{setup.ids['dev']}"
            values = {
                ids.BLOCK_HOOK: {"selected_option": dev_option},
                ids.BLOCK_SECRET_NAME: "DEV_ONLY",
                ids.BLOCK_SECRET_VALUE: "dev-only-value-0123",
                ids.BLOCK_REASON: None,
            }
            submitted = driver.view_submission("U0RITA", view, values)
            assert submitted.status == 200 and not submitted.body, submitted.body
            wait_until(
                lambda: (
                    "DEV_ONLY" in setup.dev.actions.deployed_secrets(setup.ids["dev"])
                    and any(r["event"] == "secret.added" for r in bot.audit())
                ),
                30,
                what=bot.output,
            )
        finally:
            driver.close()
        assert "DEV_ONLY" not in setup.prod.actions.deployed_secrets(setup.ids["enrich"])
        records = [r for r in bot.audit() if r.get("secret_name") == "DEV_ONLY"]
        assert {(r["tenant"], r["rule"]) for r in records} == {("dev", "dev self-service")}
        assert "secret.added" in [r["event"] for r in records]
        assert bot.stop() == 0
        assert "dev-only-value-0123" not in bot.output()


def _check_line(stdout: str, name: str) -> str:
    return next(line for line in stdout.splitlines() if line[5:].startswith(name + ":"))


def test_check_with_a_file_checks_every_tenant_and_rule(setup: Setup) -> None:
    """Every tenant's Auth0 lines carry its name, every rule's lines its name; all pass."""
    done = setup.cli("check")
    assert done.returncode == 0, done.stdout + done.stderr
    names = [line.split(":")[0][5:] for line in done.stdout.splitlines()]
    assert names == [
        "settings",
        "slack auth.test",
        "slack transport",
        "slack read-back",
        'rule "dev self-service" requesters',
        'rule "dev self-service" approvals',
        'rule "payments" channel',
        'rule "payments" requesters',
        'rule "payments" approvals',
        'rule "prod" channel',
        'rule "prod" requesters',
        'rule "prod" approvals',
        "prod auth0 token",
        "prod auth0 GET /api/v2/hooks",
        "prod auth0 GET /api/v2/actions/actions",
        "prod auth0 targets",
        "dev auth0 token",
        "dev auth0 GET /api/v2/hooks",
        "dev auth0 GET /api/v2/actions/actions",
        "dev auth0 targets",
        "database",
    ]
    assert all(line.startswith("ok   ") for line in done.stdout.splitlines())
    assert "2 tenants (prod, dev), 3 rules" in _check_line(done.stdout, "settings")
    assert "2 actions readable" in _check_line(
        done.stdout, "prod auth0 GET /api/v2/actions/actions"
    )
    assert "none on this tenant" in _check_line(done.stdout, "dev auth0 GET /api/v2/hooks")
    assert "2 needed" in _check_line(done.stdout, 'rule "payments" approvals')


def test_check_fails_a_rule_its_people_cannot_approve(setup: Setup) -> None:
    """A security group of one person cannot give two approvals, and a quorum whose two terms
    only one person can fill fails; the tenant that is down fails its own lines only."""
    setup.slack.add_usergroup("S0SECURITY", "security", ["U0LEAD1"])
    rules = RULES.replace('["U0LEAD1", "U0LEAD2"]', '["U0LEAD1"]')
    setup.policy_file(rules, dev_url=f"http://127.0.0.1:{free_port()}")
    done = setup.cli("check")
    assert done.returncode == 1
    prod = _check_line(done.stdout, 'rule "prod" approvals')
    assert prod.startswith("FAIL") and "1 person listed can give at most 1" in prod
    payments = _check_line(done.stdout, 'rule "payments" approvals')
    assert payments.startswith("FAIL") and "at most 1" in payments
    assert _check_line(done.stdout, 'rule "dev self-service" approvals').startswith("ok")
    assert _check_line(done.stdout, "prod auth0 targets").startswith("ok")
    dev_token = _check_line(done.stdout, "dev auth0 token")
    assert (
        dev_token.startswith("FAIL")
        and "tenants.dev.base_url in HOOK_SECRET_POLICY_FILE" in dev_token
    )


@pytest.mark.skipif(not PG_URL, reason=f"{NO_PG}: two replicas need PostgreSQL")
def test_two_replicas_meet_a_two_approval_rule_once(setup: Setup) -> None:
    """Two ``hook-secret-bot run`` processes on one PostgreSQL database, the file's prod rule
    needing two of security: both approvals submitted at the same moment, one to each
    replica. Both count, the quorum is met once: one PATCH and one deploy reach prod, one
    ``request.approved`` names both approvers, and dev is untouched."""
    assert PG_URL is not None
    for user in ("U0SEC1", "U0SEC2"):
        setup.slack.add_user(user, user.lower())
    with pg_schema(PG_URL) as database_url:
        env = setup.env(
            DATABASE_URL=database_url,
            HOOK_SECRET_POLICY_FILE=str(setup.cwd / "policy.toml"),
            AUTH0_DEV_CLIENT_SECRET=DEV_SECRET,
        )
        specs = [(env | {"PORT": str(free_port())}, setup.cwd / name) for name in ("a", "b")]
        with running_many(specs) as (one, two):
            drivers = [
                SlackDriver(setup.slack, bot.events_url, SIGNING_SECRET) for bot in (one, two)
            ]
            try:
                _race_two_approvals(setup, drivers, (one, two))
            finally:
                for driver in drivers:
                    driver.close()


def _race_two_approvals(
    setup: Setup, drivers: list[SlackDriver], bots: tuple[BotProcess, BotProcess]
) -> None:
    first, second = drivers
    mark = setup.slack.mark()
    assert first.slash_command("U0RITA", "add", channel_id="C0GENERAL").status == 200
    setup.slack.wait_for("views.open", after=mark)
    view = setup.slack.wait_for_view("U0RITA", callback_id=ids.CALLBACK_ADD)
    ack = first.block_suggestion("U0RITA", ids.BLOCK_HOOK, ids.BLOCK_HOOK, "", view)
    option = next(
        o
        for group in ack.payload()["option_groups"]
        for o in group["options"]
        if o["value"] == f"prod/action:{setup.ids['enrich']}"
    )
    values = {
        ids.BLOCK_HOOK: {"selected_option": option},
        ids.BLOCK_SECRET_NAME: "RACED",
        ids.BLOCK_SECRET_VALUE: "raced-value-0123",
        ids.BLOCK_REASON: "two at once",
    }
    assert not first.view_submission("U0RITA", view, values).body
    message = setup.slack.wait_for_message(
        "C0PRODAPPROVALS",
        lambda m: (
            "RACED" in m.get("text", "")
            and any(b.get("type") == "actions" for b in m.get("blocks", []))
        ),
        timeout=30,
    )
    views = {}
    for user in ("U0SEC1", "U0SEC2"):
        mark = setup.slack.mark()
        first.block_action(user, ids.ACTION_APPROVE, message=message, channel_id="C0PRODAPPROVALS")
        setup.slack.wait_for("views.open", after=mark, timeout=30)
        views[user] = setup.slack.wait_for_view(user, callback_id=ids.CALLBACK_APPROVE)
    start = threading.Barrier(2)

    def submit(user: str, driver: SlackDriver) -> Any:
        start.wait()
        return driver.view_submission(user, views[user], {ids.BLOCK_COMMENT: None})

    with ThreadPoolExecutor(2) as pool:
        acks = list(pool.map(submit, ("U0SEC1", "U0SEC2"), (first, second)))
    assert all(a.status == 200 and not a.body for a in acks), [a.body for a in acks]
    enrich = setup.ids["enrich"]
    wait_until(
        lambda: (
            "RACED" in setup.prod.actions.deployed_secrets(enrich)
            and any(r["event"] == "secret.added" for bot in bots for r in bot.audit())
        ),
        60,
        what=lambda: bots[0].output() + bots[1].output(),
    )
    records = [r for bot in bots for r in bot.audit() if r.get("secret_name") == "RACED"]
    added = sorted(r["approvals"] for r in records if r["event"] == "approval.added")
    assert added == [1, 2]
    (approved,) = [r for r in records if r["event"] == "request.approved"]
    assert sorted(approved["approvers"]) == ["U0SEC1", "U0SEC2"]
    assert [r["event"] for r in records].count("secret.added") == 1
    path = f"/api/v2/actions/actions/{enrich}"
    assert [r.method for r in setup.prod.requests if r.path == path].count("PATCH") == 1
    deploys = [r for r in setup.prod.requests if r.path == f"{path}/deploy"]
    assert len(deploys) == 1
    assert "RACED" not in setup.dev.actions.deployed_secrets(setup.ids["dev"])
