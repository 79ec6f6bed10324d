"""``run`` and ``check`` as a newcomer meets them: the same refusal, in the same words."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from standins.auth0 import FULL_SCOPES, Auth0Sandbox
from standins.slack import SlackStandIn
from tests.harness.process import BOT_TOKEN, add_people, bot_env, free_port


def _bot(command: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", command],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def _line(printed: str, name: str) -> str:
    return next(line for line in printed.splitlines() if line[5:].startswith(name + ":"))


def test_a_sqlite_file_in_a_missing_directory_is_refused_by_run_and_check(tmp_path: Path) -> None:
    """DATABASE_URL pointing into a directory that does not exist: ``run`` exits 1 before
    opening a port, naming DATABASE_URL with check's words, and creates nothing; ``check``
    fails its database line the same way."""
    database = tmp_path / "data" / "bot.db"
    with SlackStandIn(bot_token=BOT_TOKEN) as slack, Auth0Sandbox(scopes=FULL_SCOPES) as auth0:
        add_people(slack)
        env = bot_env(slack, auth0, f"sqlite:///{database}")
        ran = _bot("run", env, tmp_path)
        checked = _bot("check", env, tmp_path)
    problem = f"directory {database.parent} does not exist: create it or fix DATABASE_URL"
    assert ran.returncode == 1
    assert ran.stderr == f"cannot start: DATABASE_URL: {problem}\n"
    assert checked.returncode == 1
    assert _line(checked.stdout, "database") == f"FAIL database: {problem}"
    assert not database.parent.exists()


def test_an_unreachable_slack_is_explained_without_a_variable_nobody_set(tmp_path: Path) -> None:
    """SLACK_API_URL left unset and slack.com out of reach (here: a proxy that refuses): run's
    one line says where it tried, why, and to check the network, as check's auth.test line
    does, without telling the user to fix a variable they never set."""
    with SlackStandIn(bot_token=BOT_TOKEN) as slack, Auth0Sandbox(scopes=FULL_SCOPES) as auth0:
        add_people(slack)
        env = bot_env(slack, auth0, f"sqlite:///{tmp_path / 'bot.db'}")
        del env["SLACK_API_URL"]
        env |= {"HTTPS_PROXY": f"http://127.0.0.1:{free_port()}", "NO_PROXY": ""}
        ran = _bot("run", env, tmp_path)
        checked = _bot("check", env, tmp_path)
    assert ran.returncode == 1
    (line,) = ran.stderr.splitlines()
    said = line.removeprefix("cannot start: ")
    assert said.startswith("Slack can't be reached at https://slack.com/api/ ("), line
    assert said.endswith("check that this machine may reach it (DNS, firewall, HTTPS_PROXY)")
    assert "SLACK_API_URL" not in line
    assert _line(checked.stdout, "slack auth.test") == f"FAIL slack auth.test: {said}"
