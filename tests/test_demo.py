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


def _script_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """``_env`` for the console script. It runs the ``bot`` its editable install points at and
    finds the stand-ins beside it; when that is another checkout (say this is a git worktree
    of it), PYTHONPATH points it at this tree instead, so that this tree is what is tested."""
    env = _env(tmp_path, **extra)
    where = [sys.executable, "-c", "import bot; print(bot.__file__)"]
    found = Path(_run(where, tmp_path, env).stdout.strip()).resolve().parents[1]
    return env if found == REPO.resolve() else env | {"PYTHONPATH": str(REPO)}


def _said(out: str) -> list[tuple[str, str]]:
    """The story as (who does or sees what, what is shown), one pair per ``-- `` paragraph."""
    said = []
    for paragraph in out.split("\n-- ")[1:]:
        head, _, body = paragraph.partition("\n")
        body = body.split("\n\n", 1)[0]
        said.append((head.rstrip(":"), "\n".join(line.strip() for line in body.splitlines())))
    return said


def _shown(said: list[tuple[str, str]], who: str) -> list[str]:
    return [what for head, what in said if head.startswith(who)]


DEV_ACTION = '/hook-secret add "dev/Enrich ID tokens" PARTNER_TOKEN'
PROD_ACTION = '/hook-secret add "prod/Enrich ID tokens" VENDOR_API_KEY'
VALUES = ("demo-dev-value-never-shown", "demo-prod-value-never-shown")
CLIENT_SECRETS = ("demo-dev-client-secret", "demo-prod-client-secret")


def test_demo_reads_like_slack_and_its_audit_commands_work(tmp_path: Path) -> None:
    """The Quickstart's demo command, run elsewhere than the checkout: exit 0, two tenants from
    a policy file (dev self-service applied at once and only in dev; prod counted 1 of 2, then
    applied with two approvers), Slack as people see it, the audit trail with tenant and rule,
    a clear verdict, and a kept database the printed commands read."""
    env = _script_env(tmp_path)
    done = _run([str(SCRIPT), "demo"], tmp_path, env)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    said = _said(out)
    # dev first, then prod, each typed by the requester in #platform.
    assert _shown(said, "@rita types in #platform") == [DEV_ACTION, PROD_ACTION]
    dev_part, prod_part = out.split("\n== dev:", 1)[1].split("\n== prod:", 1)
    prod_part = prod_part.split("\n== The audit trail", 1)[0]
    assert dev_part.startswith(' rule "dev self-service", no approval needed ==')
    # The picker offers both tenants' targets, in groups per tenant (hooks still served).
    (picker,) = _shown(said, "the form's target picker")
    assert picker.splitlines() == [
        "dev · Actions: Enrich ID tokens (post-login)",
        "dev · Hooks: Client Credentials Exchange (credentials-exchange)",
        "prod · Actions: Enrich ID tokens (post-login)",
        "prod · Hooks: Client Credentials Exchange (credentials-exchange)",
    ]
    (dev_done, prod_done) = [w for h, w in said if h.endswith("and posts in #platform")]
    assert dev_done == (
        "Secret PARTNER_TOKEN added on dev · action Enrich ID tokens and deployed as version 2 "
        "by @rita, self-confirmed (no approval required)."
    )
    # Self-service: nothing was posted for approval, and dev's change stayed in dev.
    assert "#prod-approvals" not in dev_part and "Approvals:" not in dev_part
    (dev_now,) = _shown(said, "in Auth0, dev · action Enrich ID tokens now runs")
    (prod_now,) = _shown(said, "in Auth0, prod · action Enrich ID tokens now runs")
    assert dev_now.splitlines()[0] == "version 2 with secrets CRM_KEY, PARTNER_TOKEN"
    assert prod_now.splitlines()[0] == "version 2 with secrets CRM_KEY, VENDOR_API_KEY"

    # prod: the approval message counts 0 of 2, then 1 of 2 with @alex and the buttons, then
    # the second approval applies it and the buttons go.
    (posted,) = _shown(said, "the bot posts in #prod-approvals")
    for line in ("Tenant: prod", "Rule: prod two approvers", "Requested by: @rita"):
        assert line in posted.splitlines()
    assert "Approvals: 0 of 2" in posted.splitlines() and posted.endswith("[Approve] [Reject]")
    assert _shown(said, "only @rita sees")[0].startswith("⛔ You can't decide request")
    assert "Comment: checked with the vendor" in _shown(said, "@alex types a comment")
    (counted,) = _shown(said, "the bot updates its message in #prod-approvals")
    assert "Approvals: 1 of 2: @alex" in counted.splitlines()
    assert counted.endswith("[Approve] [Reject]")
    order = [
        "the bot posts in #prod-approvals",
        "@alex clicks [Approve]",
        "the bot updates its message",
        "@bea clicks [Approve]",
        "the bot PATCHes prod's action",
    ]
    assert [prod_part.index(step) for step in order] == sorted(prod_part.index(s) for s in order)
    assert prod_done == (
        "Secret VENDOR_API_KEY added on prod · action Enrich ID tokens and deployed as version 2 "
        "by @rita, approved by @alex, @bea."
    )
    (final,) = _shown(said, "the bot's message in #prod-approvals now reads")
    assert "Approvals: 2 of 2: @alex, @bea" in final.splitlines()
    assert final.endswith("✅ Added (approved by @alex, @bea)") and "[Approve]" not in final

    # The trail: every line names its tenant and rule.
    trail = out.split("\n== The audit trail", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    assert len(trail) == 17
    assert all(
        "[dev · dev self-service] " in line or "[prod · prod two approvers] " in line
        for line in trail
    )
    for line in (
        "[dev · dev self-service]    secret.added       by @rita  PARTNER_TOKEN  applied  "
        "deployed as version 2",
        "[prod · prod two approvers] approval.added     by @alex  VENDOR_API_KEY  approved  "
        '1 of 2  comment: "checked with the vendor"',
        "[prod · prod two approvers] approval.added     by @bea   VENDOR_API_KEY  approved  2 of 2",
        "[prod · prod two approvers] request.approved   by @bea   VENDOR_API_KEY  approved  "
        "approvers @alex, @bea",
    ):
        assert any(t.endswith(line) for t in trail), line

    # No raw mrkdwn left: mentions, channels, dates, emoji shortcodes and markers are rendered.
    for raw in ("<@", "<#", "<!date", ":white_check_mark:", ":no_entry:", "*Approvals:*", "`"):
        assert raw not in out
    # The values typed into the forms are never printed (only their length, "hidden here");
    # nor are the made-up client secrets the demo hands the bot through variables.
    assert "(a value of 26 characters, hidden here)" in out
    for value in (*VALUES, *CLIENT_SECRETS):
        assert value not in out and value not in done.stderr
    assert out.rstrip().splitlines()[-1].startswith("Proven: the values typed into the forms")

    verify = next(line.split() for line in out.splitlines() if line.endswith("audit verify"))
    url = shlex.split(verify[0])[0].removeprefix("DATABASE_URL=")
    assert Path(url.removeprefix("sqlite:///")).is_relative_to(tmp_path)
    with_db = env | {"DATABASE_URL": url}
    checked = _run([str(SCRIPT), "audit", "verify"], tmp_path, with_db)
    assert (checked.returncode, checked.stdout) == (0, "audit trail intact: 17 records\n")
    exported = _run([str(SCRIPT), "audit", "export"], tmp_path, with_db)
    assert not any(v in exported.stdout for v in (*VALUES, *CLIENT_SECRETS))
    records = [json.loads(line) for line in exported.stdout.splitlines()]
    applied = [*["apply.phase"] * 4, "secret.added"]
    assert [r["event"] for r in records] == [
        "request.submitted",
        "request.approved",
        *applied,
        "request.submitted",
        "approval.denied",
        "approval.added",
        "approval.added",
        "request.approved",
        *applied,
    ]
    dev, prod = records[:7], records[7:]
    assert {(r["tenant"], r["rule"], r["secret_name"]) for r in dev} == {
        ("dev", "dev self-service", "PARTNER_TOKEN")
    }
    assert {(r["tenant"], r["rule"], r["secret_name"]) for r in prod} == {
        ("prod", "prod two approvers", "VENDOR_API_KEY")
    }
    assert {r["actor"] for r in dev} == {"U0RITA"}
    added = [
        (r["actor"], r["approvals"], r["required"]) for r in prod if r["event"] == "approval.added"
    ]
    assert added == [("U0ALEX", 1, 2), ("U0BEA", 2, 2)]
    assert prod[2]["comment"] == "checked with the vendor"
    (approved,) = [r for r in prod if r["event"] == "request.approved"]
    assert approved["approvers"] == ["U0ALEX", "U0BEA"]
    for part in (dev, prod):
        assert part[-1]["target"] == "action" and part[-1]["action_version"] == 2


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
    """Settings in the environment (no second approver, Socket Mode, a database elsewhere, a
    policy file and a tenant of its own, another client secret for the demo's prod) change
    nothing: the demo brings its own, as its --help says."""
    settings = {
        "HOOK_SECRET_REQUIRED_APPROVALS": "0",
        "HOOK_SECRET_POLICY_FILE": str(tmp_path / "missing" / "policy.toml"),
        "AUTH0_DOMAIN": "acme.eu.auth0.com",
        "HOOK_SECRET_DEMO_PROD_CLIENT_SECRET": "not-the-sandbox-secret",
        "SLACK_APP_TOKEN": "xapp-1-A0-not-a-real-token",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'missing' / 'bot.db'}",
    }
    env = _env(tmp_path, PYTHONPATH=str(REPO)) | settings
    done = _run([sys.executable, "-m", "bot", "demo"], tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert "by @rita, self-confirmed (no approval required)." in done.stdout
    assert "Approvals: 1 of 2: @alex" in done.stdout
    assert "✅ Added (approved by @alex, @bea)" in done.stdout
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
