"""The local demo: the real app over real HTTP against the stand-ins, with no credentials."""

from __future__ import annotations

import functools
import io
import json
import shlex
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from bot.db.audit import AuditSink
from bot.db.encryption import generate_key
from bot.db.store import Store
from bot.logs import configure_logging
from bot.serve import lifecycle
from bot.settings import Mode, Settings, load_app_settings
from bot.slack import ids
from bot.slack.blocks.pickers import hook_option
from bot.targets import TargetKind
from standins.auth0 import FULL_SCOPES, Auth0Sandbox
from standins.local import local_bot
from standins.mrkdwn import Renderer
from standins.slack import SlackDriver, SlackStandIn

REQUESTER, APPROVER = "U0RITA", "U0ALEX"
ORIGIN, APPROVALS = "C0PLATFORM", "C0APPROVALS"
HOOK = "Client Credentials Exchange"
ACTION = "Enrich ID tokens"
DEMO_VALUE = "demo-value-never-shown"
DEMO_ACTION_VALUE = "demo-action-value-never-shown"
COMMENT = "checked with the vendor"
# The stand-ins' fixed, made-up credentials: nothing real is ever used by the demo.
DEMO_SIGNING_SECRET = "demo-signing-secret"  # noqa: S105 - fake, for the local stand-in
SANDBOX_CLIENT_SECRET = "sandbox-client-secret"  # noqa: S105 - the sandbox's default


def run_demo(out: TextIO | None = None) -> int:
    """Walk a request from the slash command to the confirmation, printing what people see;
    keep the demo's database so that ``audit verify`` and ``audit export`` can read it."""
    out = out or sys.stdout
    logs = io.StringIO()
    configure_logging("WARNING", "console", logs)  # keep the story readable
    database = Path(tempfile.mkdtemp(prefix="hook-secret-bot-demo-")) / "demo.db"
    with SlackStandIn() as slack, Auth0Sandbox(scopes=FULL_SCOPES) as auth0:
        _people(slack)
        hook_id = auth0.add_hook(HOOK, secrets={"LEGACY_KEY": "x" * 8})
        action_id = auth0.actions.add(ACTION, {"PARTNER_TOKEN": "old", "CRM_KEY": "kept"})
        settings = _settings(slack, auth0, f"sqlite:///{database}")
        audit_lines = io.StringIO()
        store = Store(settings.database_url, AuditSink(audit_lines))
        store.migrate()
        story = Story(out, slack, Renderer(slack.user_name, slack.channel_name, ansi=_tty(out)))
        with local_bot(settings, store, slack.team_id) as (url, services):
            story.driver = SlackDriver(slack, url + "/slack/events", DEMO_SIGNING_SECRET)
            story.idle = functools.partial(lifecycle.wait_idle, services)
            story.play_action(services.targets[TargetKind.ACTION].find(action_id))
            story.play(services.targets[TargetKind.HOOK].find(hook_id))
            story.driver.close()
        store.close()
        _tenant_now(story, auth0, hook_id, action_id)
        story.trail(audit_lines.getvalue())
        _kept(out, settings)
        places = {
            f"the {len(slack.calls)} Slack API calls": str(slack.calls),
            "the audit trail": audit_lines.getvalue(),
            "the logs": logs.getvalue(),
            "the database file": database.read_bytes().decode("latin-1"),
        }
        deployed = auth0.actions.deployed_secrets(action_id)
        applied = "VENDOR_API_KEY" in auth0.secrets(hook_id)
        return _verdict(out, places, applied and deployed["PARTNER_TOKEN"] == DEMO_ACTION_VALUE)


def _tenant_now(story: Story, auth0: Auth0Sandbox, hook_id: str, action_id: str) -> None:
    """What the hook and the action hold in Auth0 after the story (names only)."""
    story.say(
        f"the hook {HOOK} in Auth0 now holds",
        f"secrets {', '.join(sorted(auth0.secrets(hook_id)))} (values stay in Auth0; the "
        "bot's database kept only ciphertext, erased once applied)",
    )
    story.say(
        f"the action {ACTION} in Auth0 now runs",
        f"version {auth0.actions.deployed_number(action_id)} with secrets "
        f"{', '.join(sorted(auth0.actions.deployed_secrets(action_id)))} (CRM_KEY kept its "
        "value: the bot sent it by name only)",
    )


def _settings(slack: SlackStandIn, auth0: Auth0Sandbox, database_url: str) -> Settings:
    return load_app_settings(
        Mode.RUN,
        _env_file=None,
        slack_bot_token=slack.bot_token,
        slack_signing_secret=DEMO_SIGNING_SECRET,
        slack_api_url=slack.api_url,
        auth0_domain=auth0.domain,
        auth0_client_id=auth0.client_id,
        auth0_client_secret=SANDBOX_CLIENT_SECRET,
        auth0_base_url=auth0.url,
        hook_secret_requesters=REQUESTER,
        hook_secret_approvers=APPROVER,
        hook_secret_approval_channel=APPROVALS,
        hook_secret_encryption_key=generate_key(),
        database_url=database_url,
    )


def _people(slack: SlackStandIn) -> None:
    slack.add_user(REQUESTER, "rita")
    slack.add_user(APPROVER, "alex")
    slack.add_channel(ORIGIN, "platform")
    slack.add_channel(APPROVALS, "secret-approvals")


def _tty(out: TextIO) -> bool:
    isatty: Callable[[], bool] | None = getattr(out, "isatty", None)
    return bool(isatty and isatty())


class Story:
    """What each person does and sees, in order, written as Slack would show it."""

    driver: SlackDriver
    idle: Callable[[], object]

    def __init__(self, out: TextIO, slack: SlackStandIn, renderer: Renderer) -> None:
        self.out, self.slack, self.md = out, slack, renderer

    def play(self, hook: Any) -> None:
        """Rita asks, tries to approve her own request, Alex approves with a comment."""
        self.out.write(
            "\n== The same for an Auth0 Hook (Auth0 retired Hooks on 2026-11-18; a tenant that "
            "still has them is served) ==\n"
        )
        self._request(hook)
        approval = self.slack.wait_for_message(
            APPROVALS, lambda m: "VENDOR_API_KEY" in m.get("text", "") and bool(m.get("blocks"))
        )
        self.say("the bot posts in #secret-approvals", self.blocks(approval))
        self.say("only @rita sees, in #platform", self.latest_ephemeral(REQUESTER))
        self.say("@rita clicks [Approve] on her own request in #secret-approvals", "")
        self.driver.block_action(
            REQUESTER, ids.ACTION_APPROVE, message=approval, channel_id=APPROVALS
        )
        self.idle()
        self.say("only @rita sees", self.latest_ephemeral(REQUESTER))
        self._approve(approval)

    def play_action(self, action: Any) -> None:
        """Rita rotates a secret of an Auth0 Action; Alex approves; it is deployed."""
        self.out.write(
            "== hook-secret-bot demo: the real app, a local Slack workspace and a local "
            "Auth0 tenant ==\n   @rita may request changes, @alex may approve them; "
            "approval requests go to #secret-approvals.\n"
            "\n== An Auth0 Action: a secret rotated, approved and deployed ==\n"
        )
        command = f'/hook-secret update "{ACTION}" PARTNER_TOKEN'
        self.say("@rita types in #platform", command)
        self.driver.slash_command(REQUESTER, command.split(" ", 1)[1], channel_id=ORIGIN)
        self.idle()
        view = self.slack.wait_for_view(REQUESTER, callback_id=ids.CALLBACK_UPDATE)
        values = {
            ids.BLOCK_HOOK: {"selected_option": hook_option(action).to_dict()},
            ids.BLOCK_SECRET_NAME: "PARTNER_TOKEN",
            ids.BLOCK_SECRET_VALUE: DEMO_ACTION_VALUE,
            ids.BLOCK_REASON: "partner rotated the token",
        }
        self.say("she picks the action under “Actions”, fills in the form and submits", "")
        self.driver.view_submission(REQUESTER, view, values)
        self.idle()
        approval = self.slack.wait_for_message(
            APPROVALS, lambda m: "PARTNER_TOKEN" in m.get("text", "") and bool(m.get("blocks"))
        )
        self.say("the bot posts in #secret-approvals", self.blocks(approval))
        self.driver.block_action(
            APPROVER, ids.ACTION_APPROVE, message=approval, channel_id=APPROVALS
        )
        self.idle()
        modal = self.slack.wait_for_view(APPROVER, callback_id=ids.CALLBACK_APPROVE)
        self.say("@alex clicks [Approve] and submits the approval form", "")
        self.driver.view_submission(APPROVER, modal, {ids.BLOCK_COMMENT: None})
        self.idle()
        done = self.slack.wait_for_message(ORIGIN, lambda m: "PARTNER_TOKEN" in m.get("text", ""))
        self.say(
            "the bot PATCHes, waits for the build, deploys, and posts in #platform",
            self.md.render(done.get("text", "")),
        )

    def _request(self, hook: Any) -> None:
        command = f'/hook-secret add "{HOOK}" VENDOR_API_KEY'
        self.say("@rita types in #platform", command)
        self.driver.slash_command(REQUESTER, command.split(" ", 1)[1], channel_id=ORIGIN)
        view = self.slack.wait_for_view(REQUESTER, callback_id=ids.CALLBACK_ADD)
        values = {
            ids.BLOCK_HOOK: {"selected_option": hook_option(hook).to_dict()},
            ids.BLOCK_SECRET_NAME: "VENDOR_API_KEY",
            ids.BLOCK_SECRET_VALUE: DEMO_VALUE,
            ids.BLOCK_REASON: "vendor rotated our key",
        }
        typed = {
            ids.BLOCK_HOOK: HOOK,
            ids.BLOCK_SECRET_VALUE: f"(a value of {len(DEMO_VALUE)} characters, hidden here)",
        }
        self.say(
            f"a form “{view['title']['text']}” opens for @rita; she fills it in",
            "\n".join(
                f"{label}: {typed.get(block, values.get(block, ''))}"
                for block, label in _inputs(view)
            ),
        )
        self.driver.view_submission(REQUESTER, view, values)
        self.idle()

    def _approve(self, approval: dict[str, Any]) -> None:
        self.say("@alex clicks [Approve] in #secret-approvals", "")
        self.driver.block_action(
            APPROVER, ids.ACTION_APPROVE, message=approval, channel_id=APPROVALS
        )
        self.idle()
        modal = self.slack.wait_for_view(APPROVER, callback_id=ids.CALLBACK_APPROVE)
        self.say(f"a form “{modal['title']['text']}” opens for @alex", self.blocks(modal))
        self.say("@alex types a comment and clicks Approve", f"Comment: {COMMENT}")
        self.driver.view_submission(APPROVER, modal, {ids.BLOCK_COMMENT: COMMENT})
        self.idle()
        done = self.slack.wait_for_message(ORIGIN, lambda m: "VENDOR_API_KEY" in m.get("text", ""))
        self.say("the bot posts in #platform", self.md.render(done.get("text", "")))
        self.say(
            "the bot's message in #secret-approvals now reads",
            self.blocks(
                next(m for m in self.slack.messages(APPROVALS) if m["ts"] == approval["ts"])
            ),
        )

    def latest_ephemeral(self, user_id: str) -> str:
        return self.md.render(self.slack.ephemerals(user_id)[-1].get("text", ""))

    def blocks(self, message: dict[str, Any]) -> str:
        """A message's or modal's blocks as Slack lays them out, rendered."""
        parts = []
        for block in message.get("blocks", []):
            if block.get("type") in ("section", "header"):
                parts.append(block["text"]["text"])
            elif block.get("type") == "context":
                parts += [e.get("text", "") for e in block.get("elements", [])]
            elif block.get("type") == "actions":
                parts.append("[" + "] [".join(e["text"]["text"] for e in block["elements"]) + "]")
        return self.md.render("\n".join(parts) or str(message.get("text", "")))

    def trail(self, lines: str) -> None:
        """The audit records as JSON lines, one readable line each."""
        self.out.write("\n== The audit trail (hook-secret-bot audit export prints it) ==\n")
        for line in lines.splitlines():
            record = json.loads(line)
            when = datetime.fromisoformat(record["timestamp"]).astimezone(self.md.tz)
            comment = f'  comment: "{record["comment"]}"' if record.get("comment") else ""
            if record.get("action_version") is not None:
                comment += f"  deployed as version {record['action_version']}"
            self.out.write(
                f"  #{record['id']} {when:%H:%M:%S}  "
                f"{record['event']:<18} by @{self.slack.user_name(record['actor'])}  "
                f"{record['secret_name']}  {record['outcome']}{comment}\n"
            )

    def say(self, who: str, what: str) -> None:
        self.out.write(f"\n-- {who}" + (":\n" if what else "\n"))
        for line in what.splitlines():
            self.out.write(f"   {line}\n")


def _inputs(view: dict[str, Any]) -> list[tuple[str, str]]:
    return [(b["block_id"], b["label"]["text"]) for b in view["blocks"] if b.get("type") == "input"]


def _kept(out: TextIO, settings: Settings) -> None:
    env = f"DATABASE_URL={shlex.quote(settings.database_url)}"
    out.write(
        "\n== The demo's database is kept ==\n"
        f"   {settings.database_url.removeprefix('sqlite:///')}\n"
        f"   {env} hook-secret-bot audit verify\n"
        f"   {env} hook-secret-bot audit export\n"
    )


def _verdict(out: TextIO, places: dict[str, str], applied: bool) -> int:
    values = (DEMO_VALUE, DEMO_ACTION_VALUE)
    leaked = [where for where, text in places.items() if any(v in text for v in values)]
    if leaked or not applied:
        out.write(
            "\nNOT proven: "
            + (f"the value appeared in {', '.join(leaked)} (a bug!)" if leaked else "")
            + ("" if applied else " the secret never reached Auth0")
            + "\n"
        )
        return 1
    out.write(
        "\nProven: the value typed into the form reached Auth0 only after a second person's "
        f"approval, and appeared in none of: {'; '.join(places)}.\n"
    )
    return 0
