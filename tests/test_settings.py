"""Settings: every variable validated, each problem on its own line, exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.approvals.apply import HEARTBEAT
from bot.approvals.recovery import APPLY_LEASE
from bot.outbox.worker import Backoff
from bot.serve.runtime import SWEEP_INTERVAL
from bot.settings import Mode, SettingsError, load_app_settings

BASE = {
    "SLACK_BOT_TOKEN": "xoxb-1-settings-test",
    "SLACK_SIGNING_SECRET": "signing-settings-test",
    "AUTH0_DOMAIN": "acme.eu.auth0.com",
    "AUTH0_CLIENT_ID": "client-id",
    "AUTH0_CLIENT_SECRET": "client-secret-settings-test",
    "HOOK_SECRET_REQUESTERS": "U01REQ,S01GROUP",
    "HOOK_SECRET_APPROVERS": "U01APP",
    "HOOK_SECRET_APPROVAL_CHANNEL": "C01APPROVE",
}


def _problems(**env: str) -> list[str]:
    values = {k.lower(): v for k, v in {**BASE, **env}.items() if v != "<unset>"}
    with pytest.raises(SettingsError) as caught:
        load_app_settings(Mode.RUN, _env_file=None, **values)
    return caught.value.problems


def test_valid_settings_parse_lists_and_defaults() -> None:
    """A complete environment loads, with lists split on commas and documented defaults."""
    settings = load_app_settings(
        Mode.RUN, _env_file=None, **{k.lower(): v for k, v in BASE.items()}
    )
    assert settings.hook_secret_requesters == ["U01REQ", "S01GROUP"]
    assert settings.hook_secret_required_approvals == 1
    assert settings.hook_secret_request_ttl == 86400
    assert settings.database_url == "sqlite:///hook-secret-bot.db"
    assert settings.port == 3000
    assert not settings.socket_mode


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"AUTH0_DOMAIN": "<unset>"}, "AUTH0_DOMAIN: required"),
        ({"SLACK_BOT_TOKEN": "<unset>"}, "SLACK_BOT_TOKEN: required"),
        ({"SLACK_BOT_TOKEN": "xoxp-user-token"}, "SLACK_BOT_TOKEN: must be a bot token"),
        ({"HOOK_SECRET_REQUESTERS": "bob"}, 'HOOK_SECRET_REQUESTERS: "bob" is not a Slack user'),
        ({"HOOK_SECRET_APPROVAL_CHANNEL": "general"}, 'HOOK_SECRET_APPROVAL_CHANNEL: "general"'),
        ({"HOOK_SECRET_REQUIRED_APPROVALS": "2"}, "HOOK_SECRET_REQUIRED_APPROVALS:"),
        ({"HOOK_SECRET_ENCRYPTION_KEY": "not-a-key"}, "HOOK_SECRET_ENCRYPTION_KEY: key #1"),
        ({"PORT": "70000"}, "PORT:"),
        ({"AUTH0_DOMAIN": "not a domain"}, "AUTH0_DOMAIN:"),
        ({"SLACK_SIGNING_SECRET": "<unset>"}, "SLACK_SIGNING_SECRET: required in HTTP mode"),
        ({"HOOK_SECRET_APPROVERS": "<unset>"}, "HOOK_SECRET_APPROVERS: required when approvals"),
        ({"DATABASE_URL": "postgresql+psycopg://u@h/db"}, "HOOK_SECRET_ENCRYPTION_KEY: required"),
    ],
)
def test_each_bad_variable_is_named(env: dict[str, str], expected: str) -> None:
    """Each missing or malformed variable produces a line that names it."""
    problems = _problems(**env)
    assert any(line.startswith(expected) for line in problems), problems


TESTING_KNOBS = [
    "HOOK_SECRET_TESTING_APPLY_LEASE_SECONDS",
    "HOOK_SECRET_TESTING_HEARTBEAT_SECONDS",
    "HOOK_SECRET_TESTING_SWEEP_SECONDS",
    "HOOK_SECRET_TESTING_BACKOFF_BASE_SECONDS",
    "HOOK_SECRET_TESTING_OUTBOX_LEASE_SECONDS",
]


def test_the_testing_knobs_default_to_the_products_timings_and_say_they_are_for_testing() -> None:
    """Unset, every testing knob is the timing the bot runs with; each says it is testing-only."""
    settings = load_app_settings(
        Mode.RUN, _env_file=None, **{k.lower(): v for k, v in BASE.items()}
    )
    product = _product_timings()
    assert {name: getattr(settings, name.lower()) for name in TESTING_KNOBS} == product
    for name in TESTING_KNOBS:
        description = type(settings).model_fields[name.lower()].description or ""
        assert description.startswith("Testing only"), (name, description)


def _product_timings() -> dict[str, float]:
    """The product's own timings, where the code keeps them."""
    return {
        "HOOK_SECRET_TESTING_APPLY_LEASE_SECONDS": APPLY_LEASE.total_seconds(),
        "HOOK_SECRET_TESTING_HEARTBEAT_SECONDS": HEARTBEAT.total_seconds(),
        "HOOK_SECRET_TESTING_SWEEP_SECONDS": SWEEP_INTERVAL,
        "HOOK_SECRET_TESTING_BACKOFF_BASE_SECONDS": Backoff().base,
        "HOOK_SECRET_TESTING_OUTBOX_LEASE_SECONDS": 30.0,  # Delivery.lease
    }


@pytest.mark.parametrize("name", TESTING_KNOBS)
@pytest.mark.parametrize("text", ["0", "-1", "nan", "inf", "soon"])
def test_a_testing_knob_must_be_a_positive_number(name: str, text: str) -> None:
    problems = _problems(**{name: text})
    assert any(line.startswith(f"{name}: ") for line in problems), problems


def test_the_testing_heartbeat_must_be_shorter_than_the_testing_apply_lease() -> None:
    problems = _problems(
        HOOK_SECRET_TESTING_APPLY_LEASE_SECONDS="2", HOOK_SECRET_TESTING_HEARTBEAT_SECONDS="2"
    )
    assert problems == [
        "HOOK_SECRET_TESTING_HEARTBEAT_SECONDS: must be shorter than "
        "HOOK_SECRET_TESTING_APPLY_LEASE_SECONDS (or a running apply is taken over)"
    ]


def test_socket_mode_needs_no_signing_secret() -> None:
    """With an app-level token the signing secret is optional."""
    values = {k.lower(): v for k, v in BASE.items() if k != "SLACK_SIGNING_SECRET"}
    settings = load_app_settings(Mode.RUN, _env_file=None, slack_app_token="xapp-1-abc", **values)
    assert settings.socket_mode


def test_run_with_bad_settings_exits_2_with_one_line_each_and_no_secret(tmp_path: Path) -> None:
    """`hook-secret-bot run` prints one line per problem, exits 2 and never echoes a secret."""
    env = {
        "PATH": "/usr/bin:/bin",
        "SLACK_BOT_TOKEN": "xoxp-leaky-user-token-123",
        "AUTH0_CLIENT_SECRET": "very-secret-client-secret",
        "HOOK_SECRET_REQUESTERS": "bob",
    }
    done = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr
    names = [line.split(":")[0] for line in lines]
    assert {"SLACK_BOT_TOKEN", "AUTH0_DOMAIN", "AUTH0_CLIENT_ID", "HOOK_SECRET_REQUESTERS"} <= set(
        names
    )
    assert len(names) == len(set(names))
    assert "leaky" not in done.stderr + done.stdout
    assert "very-secret" not in done.stderr + done.stdout
