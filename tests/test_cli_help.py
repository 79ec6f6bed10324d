"""``hook-secret-bot --help`` and each command's: what it does, what it reads, how it exits."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest

import bot
from tests.harness.process import REPO
from tests.test_settings_env import CASES

CONTRACT_VARIABLES = sorted({variable for variable, _, _ in CASES} | {"PORT"})


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_top_level_help_lists_the_commands_in_plain_text() -> None:
    """The top-level help names every command and carries no reST markup."""
    done = _cli("--help")
    assert done.returncode == 0
    for command in ("run", "check", "demo", "keygen", "audit"):
        assert f"    {command} " in done.stdout
    assert "``" not in done.stdout and ":func:" not in done.stdout


@pytest.mark.parametrize(
    ("command", "codes"),
    [
        (["run"], ["0", "1", "2"]),
        (["check"], ["0", "1", "2"]),
        (["demo"], ["0", "1", "2"]),
        (["keygen"], ["0"]),
        (["audit", "verify"], ["0", "1", "2", "3"]),
        (["audit", "export"], ["0", "2", "3"]),
    ],
)
def test_each_command_says_what_it_reads_and_how_it_exits(
    command: list[str], codes: list[str]
) -> None:
    """Each subcommand's --help has a description, a ``reads:`` part and every exit status."""
    done = _cli(*command, "--help")
    assert done.returncode == 0
    description, _, rest = done.stdout.partition("reads:")
    assert len(description.splitlines()) > 3 and "exit status:" in rest
    exits = rest.split("exit status:")[1].splitlines()
    listed = [line.split()[0] for line in exits if line.strip()]
    assert [code for code in listed if code.isdigit()] == codes


def test_run_and_check_name_every_setting() -> None:
    """``run --help`` names every variable of the settings table; ``audit`` only DATABASE_URL."""
    run = _cli("run", "--help").stdout
    assert [v for v in CONTRACT_VARIABLES if v not in run] == []
    check = _cli("check", "--help").stdout
    assert [v for v in CONTRACT_VARIABLES if v not in check and v != "PORT"] == []
    reads = _cli("audit", "verify", "--help").stdout.split("reads:")[1].split("exit status:")[0]
    assert "DATABASE_URL" in reads and "SLACK_" not in reads


def test_audit_alone_lists_its_subcommands() -> None:
    """``hook-secret-bot audit`` with no subcommand shows verify and export (exit 2)."""
    done = _cli("audit")
    assert done.returncode == 2
    assert "verify" in done.stdout and "export" in done.stdout and "Traceback" not in done.stderr


def test_version_prints_the_package_version() -> None:
    """``--version`` prints the program and its version, as the package records it."""
    done = _cli("--version")
    assert (done.returncode, done.stdout) == (0, f"hook-secret-bot {bot.__version__}\n")


def test_help_and_description_lead_with_actions() -> None:
    """The top-level help and the package description name Actions first."""
    lead = "Change Auth0 Action and Hook secrets from Slack, with approvals"
    assert _cli("--help").stdout.split("\n\n")[1].replace("\n", " ").startswith(lead)
    assert (bot.__doc__ or "").startswith("hook-secret-bot: " + lead[0].lower() + lead[1:])
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert pyproject["project"]["description"].startswith(lead)


@pytest.mark.parametrize("command", [["demo"], ["keygen"]])
def test_commands_that_read_no_settings_say_only_that(command: list[str]) -> None:
    """``demo`` and ``keygen`` read no settings: their ``reads:`` part names no variable and
    no .env file as a source."""
    reads = _cli(*command, "--help").stdout.split("reads:")[1].split("exit status:")[0]
    assert reads.strip().startswith("nothing")
    assert "Settings come from" not in reads
    assert [v for v in CONTRACT_VARIABLES if v in reads] == []
