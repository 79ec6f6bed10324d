"""Settings as users give them: strings in the environment or a ``.env`` file, in a subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.slack import ids
from standins.auth0 import Auth0Sandbox
from standins.slack import SlackDriver, SlackStandIn
from tests.conftest import PG_URL
from tests.harness.process import (
    BOT_TOKEN,
    CLIENT_SECRET,
    ORIGIN,
    REPO,
    REQUESTER,
    SIGNING_SECRET,
    add_people,
    free_port,
    pick_hook,
    start,
)

README = (REPO / "README.md").read_text()
AUDIT_DOC = (REPO / "docs" / "audit.md").read_text()
# Fixed, so that every xdist worker collects the same test ids (a test-only key).
KEY = "dGVzdC1vbmx5LWZpeGVkLWtleS1ub3QtYS1zZWNyZXQ="
# A complete HTTP-mode installation, with the README's example values (secrets excepted).
BASE = {
    "SLACK_BOT_TOKEN": "xoxb-1111-2222-settings-example",
    "SLACK_SIGNING_SECRET": "8f14e45fceea167a5a36dedd4bea2543",
    "AUTH0_DOMAIN": "acme.eu.auth0.com",
    "AUTH0_CLIENT_ID": "Yf2ZnK3oX8cP1qR7sT4uV6wA9bD0eG5h",
    "AUTH0_CLIENT_SECRET": "client-secret-settings-example",
    "HOOK_SECRET_REQUESTERS": "U012ABCDEF,S0PLATFORM",
    "HOOK_SECRET_APPROVERS": "S0SECURITY",
    "HOOK_SECRET_APPROVAL_CHANNEL": "C0SECRETAPPROVALS",
    "HOOK_SECRET_ENCRYPTION_KEY": KEY,
}
# What the child prints: for each job (an environment and a working directory, as a process of
# its own would have them), the settings `run` would serve with, secrets unwrapped for
# comparison, or the problem lines. One child loads every case: a process start each cost more
# than all the loading, and the settings are read afresh from os.environ and ./.env each time.
LOAD = """
import json, os, sys
from pydantic import SecretStr
from bot.settings import Mode, SettingsError, load_app_settings
answers = []
for job in json.load(sys.stdin):
    os.environ.clear()
    os.environ.update(job["env"])
    os.chdir(job["cwd"])
    try:
        settings = load_app_settings(Mode.RUN)
    except SettingsError as error:
        answers.append({"problems": error.problems})
        continue
    values = {name: getattr(settings, name) for name in type(settings).model_fields}
    answers.append({"loaded": {k: v.get_secret_value() if isinstance(v, SecretStr) else v
                               for k, v in values.items()}})
print(json.dumps(answers))
"""
SECRET_VARIABLES = {
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "AUTH0_CLIENT_SECRET",
    "HOOK_SECRET_ENCRYPTION_KEY",
}
# One case per variable of CONTRACT §2: the string as typed, and the value the bot then uses.
CASES = [
    ("SLACK_BOT_TOKEN", BASE["SLACK_BOT_TOKEN"], BASE["SLACK_BOT_TOKEN"]),
    ("SLACK_SIGNING_SECRET", BASE["SLACK_SIGNING_SECRET"], BASE["SLACK_SIGNING_SECRET"]),
    ("SLACK_APP_TOKEN", "xapp-1-A0APP-3333-example", "xapp-1-A0APP-3333-example"),
    ("SLACK_API_URL", "https://slack.com/api/", "https://slack.com/api/"),
    ("AUTH0_DOMAIN", "acme.eu.auth0.com", "acme.eu.auth0.com"),
    ("AUTH0_CLIENT_ID", BASE["AUTH0_CLIENT_ID"], BASE["AUTH0_CLIENT_ID"]),
    ("AUTH0_CLIENT_SECRET", BASE["AUTH0_CLIENT_SECRET"], BASE["AUTH0_CLIENT_SECRET"]),
    ("AUTH0_BASE_URL", "https://auth0-proxy.example.com", "https://auth0-proxy.example.com"),
    ("HOOK_SECRET_REQUESTERS", "U012ABCDEF,S0PLATFORM", ["U012ABCDEF", "S0PLATFORM"]),
    ("HOOK_SECRET_APPROVERS", "S0SECURITY", ["S0SECURITY"]),
    ("HOOK_SECRET_APPROVAL_CHANNEL", "C0SECRETAPPROVALS", "C0SECRETAPPROVALS"),
    ("HOOK_SECRET_REQUIRED_APPROVALS", "0", 0),
    ("HOOK_SECRET_REQUIRED_APPROVALS", "1", 1),
    ("HOOK_SECRET_REQUEST_TTL", "3600", 3600),
    ("HOOK_SECRET_ENCRYPTION_KEY", KEY, KEY),
    ("DATABASE_URL", "sqlite:///hook-secret-bot.db", "sqlite:///hook-secret-bot.db"),
    (
        "DATABASE_URL",
        "postgresql+psycopg://bot:pw@db/hooksecrets",
        "postgresql+psycopg://bot:pw@db/hooksecrets",
    ),
    (
        "DATABASE_URL",
        "postgres://bot:pw@db/hooksecrets",
        "postgresql+psycopg://bot:pw@db/hooksecrets",
    ),
    (
        "DATABASE_URL",
        "postgresql://bot:pw@db/hooksecrets",
        "postgresql+psycopg://bot:pw@db/hooksecrets",
    ),
    ("PORT", "3000", 3000),
    ("LOG_LEVEL", "info", "INFO"),
    ("LOG_FORMAT", "console", "console"),
]
OPTIONAL = [
    "SLACK_APP_TOKEN",
    "SLACK_API_URL",
    "AUTH0_BASE_URL",
    "HOOK_SECRET_APPROVERS",
    "HOOK_SECRET_APPROVAL_CHANNEL",
    "HOOK_SECRET_REQUEST_TTL",
    "HOOK_SECRET_ENCRYPTION_KEY",
    "DATABASE_URL",
    "PORT",
    "LOG_LEVEL",
    "LOG_FORMAT",
]


def _clean_env(**settings: str) -> dict[str, str]:
    """The test's environment without any setting of the bot, plus ``settings``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "AUTH0_", "HOOK_SECRET_", "DATABASE_URL", "PORT", "LOG_"))
    }
    return {**env, "PYTHONPATH": str(REPO), **settings}


def _write_dotenv(directory: Path, settings: dict[str, str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / ".env").write_text("".join(f"{k}={v}\n" for k, v in settings.items()))


def _job(settings: dict[str, str], where: str, cwd: Path) -> dict[str, Any]:
    """Settings given the way ``run`` would find them: in the environment or in ``.env``."""
    cwd.mkdir(parents=True, exist_ok=True)
    if where == ".env":
        _write_dotenv(cwd, settings)
        return {"env": _clean_env(), "cwd": str(cwd)}
    return {"env": _clean_env(**settings), "cwd": str(cwd)}


WHERE = ["environment", ".env"]
EMPTY_OPTIONAL = {**BASE, **dict.fromkeys(OPTIONAL, ""), "HOOK_SECRET_REQUIRED_APPROVALS": "0"}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, ...], dict[str, Any]]:
    """What a child loads for every case of the two tests below, keyed by case."""
    cases: dict[tuple[str, ...], dict[str, str]] = {}
    for where in WHERE:
        for variable, text, _ in CASES:
            cases[(where, variable, text)] = {**BASE, variable: text}
        cases[(where, "empty optional")] = EMPTY_OPTIONAL
    root = tmp_path_factory.mktemp("settings")
    jobs = [
        _job(settings, key[0], root / str(n)) for n, (key, settings) in enumerate(cases.items())
    ]
    done = subprocess.run(
        [sys.executable, "-c", LOAD],
        input=json.dumps(jobs),
        env=_clean_env(),
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return dict(zip(cases, json.loads(done.stdout), strict=True))


def _child(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def _run_exits_2(env: dict[str, str], cwd: Path) -> list[str]:
    """``hook-secret-bot run`` with bad settings: the problem lines (exit 2, no traceback)."""
    done = _child([sys.executable, "-m", "bot", "run"], _clean_env(**env), cwd)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    return done.stderr.strip().splitlines()


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize(("variable", "text", "expected"), CASES)
def test_every_variable_is_read_from_its_string(
    loaded: dict[tuple[str, ...], dict[str, Any]],
    where: str,
    variable: str,
    text: str,
    expected: Any,
) -> None:
    """Each variable of the contract, typed as in the README, gives the value the bot uses."""
    if variable not in SECRET_VARIABLES:
        rows = (line.strip() for line in README.splitlines())
        row = next(line for line in rows if line.startswith(f"| `{variable}` |"))
        assert f"`{text}`" in row, f"README's example for {variable} differs: {row}"
    done = loaded[(where, variable, text)]
    assert "problems" not in done, done
    assert done["loaded"][variable.lower()] == expected


@pytest.mark.parametrize("where", WHERE)
def test_empty_optional_variables_mean_unset(
    loaded: dict[tuple[str, ...], dict[str, Any]], where: str
) -> None:
    """``NAME=`` lines for every optional variable load as the documented defaults."""
    done = loaded[(where, "empty optional")]
    assert "problems" not in done, done
    defaults = done["loaded"]
    assert defaults["slack_app_token"] is None and defaults["hook_secret_approval_channel"] is None
    assert (
        defaults["hook_secret_approvers"] == [] and defaults["hook_secret_encryption_key"] is None
    )
    assert defaults["slack_api_url"] == "https://slack.com/api/"
    assert defaults["database_url"] == "sqlite:///hook-secret-bot.db"
    assert (defaults["port"], defaults["hook_secret_request_ttl"]) == (3000, 86400)
    assert (defaults["log_level"], defaults["log_format"]) == ("INFO", None)


@pytest.mark.parametrize(
    ("variable", "expected"),
    [
        ("SLACK_BOT_TOKEN", "SLACK_BOT_TOKEN: required"),
        ("SLACK_SIGNING_SECRET", "SLACK_SIGNING_SECRET: required in HTTP mode"),
        ("AUTH0_DOMAIN", "AUTH0_DOMAIN: required"),
        ("AUTH0_CLIENT_ID", "AUTH0_CLIENT_ID: required"),
        ("AUTH0_CLIENT_SECRET", "AUTH0_CLIENT_SECRET: required"),
        ("HOOK_SECRET_REQUESTERS", "HOOK_SECRET_REQUESTERS: required"),
        ("HOOK_SECRET_APPROVERS", "HOOK_SECRET_APPROVERS: required when approvals are on"),
        ("HOOK_SECRET_APPROVAL_CHANNEL", "HOOK_SECRET_APPROVAL_CHANNEL: required when approvals"),
    ],
)
def test_an_empty_required_variable_is_required(
    tmp_path: Path, variable: str, expected: str
) -> None:
    """``NAME=`` for a required or secret variable stops ``run`` with ``NAME: required``."""
    _write_dotenv(tmp_path, {**BASE, variable: ""})
    (line,) = _run_exits_2({}, tmp_path)
    assert line.startswith(expected)
    # The environment's empty value wins over the .env file, and means the same.
    _write_dotenv(tmp_path, BASE)
    assert _run_exits_2({variable: ""}, tmp_path) == [line]


def test_every_problem_is_reported_in_one_round(tmp_path: Path) -> None:
    """Missing, malformed and cross-variable problems all come at once, one line each."""
    env = {
        **BASE,
        "SLACK_SIGNING_SECRET": "",
        "AUTH0_DOMAIN": "",
        "HOOK_SECRET_REQUESTERS": "bob",
        "HOOK_SECRET_APPROVERS": "",
        "HOOK_SECRET_APPROVAL_CHANNEL": "",
        "HOOK_SECRET_ENCRYPTION_KEY": "",
        "DATABASE_URL": "postgres://bot:pw@db/hooksecrets",
        "PORT": "http",
    }
    lines = _run_exits_2(env, tmp_path)
    assert sorted(line.split(":")[0] for line in lines) == sorted(
        [
            "AUTH0_DOMAIN",
            "HOOK_SECRET_REQUESTERS",
            "PORT",
            "SLACK_SIGNING_SECRET",
            "HOOK_SECRET_APPROVERS",
            "HOOK_SECRET_APPROVAL_CHANNEL",
            "HOOK_SECRET_ENCRYPTION_KEY",
        ]
    ), lines
    assert "pw" not in "\n".join(lines)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql+psycopg2://bot:pw@db/x", "use postgresql+psycopg://"),
        ("mysql://bot:pw@db/x", "must be a sqlite:///FILE or postgresql+psycopg://"),
        ("hook-secret-bot.db", "must be a sqlite:///FILE or postgresql+psycopg://"),
    ],
)
def test_a_database_url_the_bot_cannot_use_says_what_to_write(
    tmp_path: Path, url: str, expected: str
) -> None:
    """A driver we don't ship, or no URL at all, is one DATABASE_URL line saying what works."""
    (line,) = _run_exits_2({**BASE, "DATABASE_URL": url}, tmp_path)
    assert line.startswith("DATABASE_URL: ") and expected in line.replace("write the URL as", "use")
    assert "pw" not in line


@pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL is not set")
def test_a_heroku_postgres_url_connects(tmp_path: Path) -> None:
    """The ``postgres://`` spelling Heroku gives reaches the database with psycopg 3."""
    assert PG_URL is not None
    heroku = "postgres://" + PG_URL.split("://", 1)[1]
    env = {**BASE, "DATABASE_URL": heroku}
    probe = (
        "from bot.settings import Mode, load_settings; from bot.db.store import Store;"
        "print(Store(load_settings(Mode.STORE).database_url).ping(schema=False))"
    )
    done = _child([sys.executable, "-c", probe], _clean_env(**env), tmp_path)
    assert (done.returncode, done.stdout.strip()) == (0, "True"), done.stderr


def test_approvals_off_from_dotenv_is_a_working_self_service_bot(tmp_path: Path) -> None:
    """``HOOK_SECRET_REQUIRED_APPROVALS=0`` in ``.env``: `run` serves, a signed command and
    form submission apply the secret in Auth0 and confirm it, with no approval step."""
    value = "self-service-value-0123"
    with SlackStandIn(bot_token=BOT_TOKEN) as slack, Auth0Sandbox() as auth0:
        add_people(slack)
        hook_id = auth0.add_hook("Client Credentials Exchange")
        port = free_port()
        dotenv = {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.api_url,
            "AUTH0_DOMAIN": auth0.domain,
            "AUTH0_CLIENT_ID": auth0.client_id,
            "AUTH0_CLIENT_SECRET": CLIENT_SECRET,
            "AUTH0_BASE_URL": auth0.url,
            "HOOK_SECRET_REQUESTERS": REQUESTER,
            "HOOK_SECRET_APPROVERS": "",
            "HOOK_SECRET_APPROVAL_CHANNEL": "",
            "HOOK_SECRET_REQUIRED_APPROVALS": "0",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
            "PORT": str(port),
            "LOG_FORMAT": "json",
        }
        workdir = tmp_path / "run"
        _write_dotenv(workdir, dotenv)
        bot = start(_clean_env(), workdir)  # every setting, PORT included, from .env only
        bot.port = port
        try:
            bot.wait_ready()
            with SlackDriver(slack, bot.events_url, SIGNING_SECRET) as driver:
                confirmation = _self_service_add(slack, driver, hook_id, value)
        finally:
            assert bot.stop() == 0
        assert auth0.secrets(hook_id) == {"SELF_KEY": value}
        assert "self-confirmed" in confirmation["text"] and value not in str(slack.calls)
        events = [r["event"] for r in bot.audit() if r.get("secret_name") == "SELF_KEY"]
        assert events == ["request.submitted", "request.approved", "secret.added"]
        assert value not in bot.output()
    # `audit export`, with the same .env, prints exactly the audit lines `run` printed.
    printed = [line for line in bot.stdout.read_text().splitlines() if '"audit":true' in line]
    exported = _child([sys.executable, "-m", "bot", "audit", "export"], _clean_env(), workdir)
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.splitlines() == printed and len(printed) == 3
    # Every field those lines carry is in the audit field table of docs/audit.md.
    assert {key for record in bot.audit() for key in record} - _audit_fields() == set()


def _audit_fields() -> set[str]:
    """The names the audit field table of docs/audit.md documents."""
    table = AUDIT_DOC.split("| field | meaning |", 1)[1].split("\n\n", 1)[0]
    return set(re.findall(r"`([a-z_]+)`", table))


def _self_service_add(
    slack: SlackStandIn, driver: SlackDriver, hook_id: str, value: str
) -> dict[str, Any]:
    """``/hook-secret add``, the form filled and submitted; the confirmation in the channel."""
    mark = slack.mark()
    assert driver.slash_command(REQUESTER, "add", channel_id=ORIGIN).status == 200
    slack.wait_for("views.open", after=mark)
    view = slack.wait_for_view(REQUESTER, callback_id=ids.CALLBACK_ADD)
    values = {
        ids.BLOCK_HOOK: pick_hook(driver, view, hook_id),
        ids.BLOCK_SECRET_NAME: "SELF_KEY",
        ids.BLOCK_SECRET_VALUE: value,
        ids.BLOCK_REASON: None,
    }
    ack = driver.view_submission(REQUESTER, view, values)
    assert (ack.status, ack.body) == (200, b"")
    return slack.wait_for_message(ORIGIN, lambda m: "SELF_KEY" in m.get("text", ""))
