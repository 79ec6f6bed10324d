"""``hook-secret-bot demo`` as a user runs it, and what ``pip install .`` ships (no stand-ins)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).with_name("hook-secret-bot")
# What a copy of the source tree leaves out: nothing a build or the demo needs.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "*.db"
)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without anything that would find the stand-ins for it."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DATABASE_URL")}
    env.update(TMPDIR=str(tmp_path), **extra)
    return env


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_demo_reads_like_slack_and_its_audit_commands_work(tmp_path: Path) -> None:
    """The Quickstart's demo command, run elsewhere than the checkout: exit 0, Slack as people
    see it, the comment, a clear verdict, and a kept database the printed commands read."""
    done = _run([str(SCRIPT), "demo"], tmp_path, _env(tmp_path))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "-- @rita types in #platform:" in out
    # Actions lead: the action's story comes first, the hook's after it.
    assert out.index('/hook-secret update "Enrich ID tokens"') < out.index("/hook-secret add")
    assert '/hook-secret add "Client Credentials Exchange" VENDOR_API_KEY' in out
    assert "Requested by: @rita" in out and "✅ Added (approved by @alex)" in out
    assert "⛔ You can't decide request" in out
    assert "Comment: checked with the vendor" in out
    assert 'request.approved   by @alex  VENDOR_API_KEY  approved  comment: "checked' in out
    # No raw mrkdwn left: mentions, channels, dates, emoji shortcodes and markers are rendered.
    for raw in ("<@", "<#", "<!date", ":white_check_mark:", ":no_entry:", "*Hook:*", "`"):
        assert raw not in out
    assert "demo-value-never-shown" not in out
    # The action part: picked under Actions, deployed, and the version shown.
    assert '/hook-secret update "Enrich ID tokens" PARTNER_TOKEN' in out
    assert "on action Enrich ID tokens and deployed as version 2" in out
    assert "secret.updated     by @alex  PARTNER_TOKEN  applied  deployed as version 2" in out
    assert "demo-action-value-never-shown" not in out
    assert out.rstrip().splitlines()[-1].startswith("Proven: the value typed into the form")
    verify = next(line.split() for line in out.splitlines() if line.endswith("audit verify"))
    url = shlex.split(verify[0])[0].removeprefix("DATABASE_URL=")
    assert Path(url.removeprefix("sqlite:///")).is_relative_to(tmp_path)
    checked = _run([str(SCRIPT), "audit", "verify"], tmp_path, _env(tmp_path, DATABASE_URL=url))
    assert (checked.returncode, checked.stdout) == (0, "audit trail intact: 11 records\n")
    exported = _run([str(SCRIPT), "audit", "export"], tmp_path, _env(tmp_path, DATABASE_URL=url))
    records = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [r["event"] for r in records] == [
        "request.submitted",
        "request.approved",
        *["apply.phase"] * 4,
        "secret.updated",
        "request.submitted",
        "approval.denied",
        "request.approved",
        "secret.added",
    ]
    assert records[6]["target"] == "action" and records[6]["action_version"] == 2
    assert records[-2]["comment"] == "checked with the vendor"


def test_demo_into_a_reader_that_stops_early_ends_quietly(tmp_path: Path) -> None:
    """``hook-secret-bot demo | head -1``: once the reader is gone the demo ends with SIGPIPE's
    status and no BrokenPipeError traceback."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "demo"],
        cwd=tmp_path,
        env=_env(tmp_path, PYTHONPATH=str(REPO)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"== hook-secret-bot demo")
    proc.stdout.close()
    assert proc.wait(120) == 141
    assert proc.stderr.read() == b""


def test_the_demo_ignores_settings_meant_for_a_real_installation(tmp_path: Path) -> None:
    """Settings in the environment (no second approver, Socket Mode, a database elsewhere)
    change nothing: the demo brings its own, as its --help says."""
    settings = {
        "HOOK_SECRET_REQUIRED_APPROVALS": "0",
        "SLACK_APP_TOKEN": "xapp-1-A0-not-a-real-token",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'missing' / 'bot.db'}",
    }
    env = _env(tmp_path, PYTHONPATH=str(REPO)) | settings
    done = _run([sys.executable, "-m", "bot", "demo"], tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert "✅ Added (approved by @alex)" in done.stdout
    assert not (tmp_path / "missing").exists()


def test_demo_without_the_standins_says_how_to_get_them(tmp_path: Path) -> None:
    """An installed ``bot`` with no source checkout beside it: exit 2 and one line."""
    shutil.copytree(REPO / "bot", tmp_path / "site" / "bot", ignore=NOT_SOURCE)
    done = _run([sys.executable, "-m", "bot", "demo"], tmp_path / "site", _env(tmp_path))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.count("\n") == 1
    assert "pip install -e ." in done.stderr and "source checkout" in done.stderr


def test_the_wheel_ships_the_bot_and_no_stand_in(tmp_path: Path) -> None:
    """``pip install .`` installs ``bot`` only: no test server, no demo scaffolding."""
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=NOT_SOURCE)
    built = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        tmp_path,
        _env(tmp_path),
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("hook_secret_bot-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {
        "bot",
        wheel.name.split("-py3")[0] + ".dist-info",
    }
    assert "bot/ops/cli.py" in names and "bot/ops/demo.py" in names
    assert not [n for n in names if "standins" in n or "sandbox" in n or n.startswith("tests")]


def test_nothing_in_bot_imports_the_stand_ins_but_the_demo_entry_point(tmp_path: Path) -> None:
    """The product never depends on test servers: only bot/ops/demo.py names the package, and
    only when the demo runs (the console script's other commands never load it)."""
    users = [
        path.relative_to(REPO).as_posix()
        for path in (REPO / "bot").rglob("*.py")
        if "standins" in path.read_text()
    ]
    assert users == ["bot/ops/demo.py"]
    done = subprocess.run(
        [sys.executable, "-c", "import sys, bot.ops.cli, bot.ops.demo; print(sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        env=_env(tmp_path),
    )
    assert "standins" not in done.stdout
