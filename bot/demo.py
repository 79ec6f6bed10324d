"""``hook-secret-bot demo``: the whole flow on this machine, with no credentials and no network."""

from __future__ import annotations

import io
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any, TextIO

from bot import ids
from bot.audit import AuditSink
from bot.blocks import hook_option
from bot.crypto import generate_key
from bot.logs import configure_logging
from bot.settings import Mode, load_app_settings
from bot.store import Store
from standins.auth0 import Auth0Sandbox
from standins.local import local_bot
from standins.slack import SlackDriver, SlackStandIn

REQUESTER, APPROVER = "U0RITA", "U0ALEX"
SLACK_DATE = re.compile(r"<!date\^\d+\^[^|>]*\|([^>]*)>")
ORIGIN, APPROVALS = "C0PLATFORM", "C0APPROVALS"
DEMO_VALUE = "demo-value-never-shown"
# The stand-ins' fixed, made-up credentials: nothing real is ever used by the demo.
DEMO_SIGNING_SECRET = "demo-signing-secret"  # noqa: S105 - fake, for the local stand-in
SANDBOX_CLIENT_SECRET = "sandbox-client-secret"  # noqa: S105 - the sandbox's default


def run_demo(out: TextIO | None = None) -> int:
    """Walk a request from the slash command to the confirmation, printing what people see."""
    out = out or sys.stdout
    configure_logging("WARNING", "console", io.StringIO())  # keep the story readable
    with tempfile.TemporaryDirectory() as tmp, SlackStandIn() as slack, Auth0Sandbox() as auth0:
        _people(slack)
        hook_id = auth0.add_hook("Client Credentials Exchange", secrets={"LEGACY_KEY": "x" * 8})
        settings = load_app_settings(
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
            database_url=f"sqlite:///{Path(tmp) / 'demo.db'}",
        )
        audit_lines = io.StringIO()
        store = Store(settings.database_url, AuditSink(audit_lines))
        store.migrate()
        with local_bot(settings, store, slack.team_id) as (url, services):
            driver = SlackDriver(slack, url + "/slack/events", DEMO_SIGNING_SECRET)
            _story(out, slack, driver, services.wait_idle, services.catalog.hooks(), hook_id)
            driver.close()
        _say(
            out,
            "Auth0 now holds",
            f"secrets {sorted(auth0.secrets(hook_id))} on the hook "
            "(values stay in Auth0; the bot's database kept only ciphertext, now erased)",
        )
        out.write("\n== The audit trail (also printed by `hook-secret-bot audit export`) ==\n")
        for line in audit_lines.getvalue().splitlines():
            record = json.loads(line)
            out.write(
                f"  #{record['id']} {record['timestamp']} {record['event']:<18} "
                f"actor={record['actor']} secret={record['secret_name']} "
                f"outcome={record['outcome']}\n"
            )
        store.close()
        leaked = DEMO_VALUE in str(slack.calls) or DEMO_VALUE in audit_lines.getvalue()
        out.write(
            "\nThe value appeared in Slack or the audit trail: "
            f"{'YES (a bug!)' if leaked else 'no'}\n"
        )
        return 1 if leaked else 0


def _people(slack: SlackStandIn) -> None:
    slack.add_user(REQUESTER, "rita (engineer)")
    slack.add_user(APPROVER, "alex (security)")
    slack.add_channel(ORIGIN, "platform")
    slack.add_channel(APPROVALS, "secret-approvals")


def _story(
    out: TextIO, slack: SlackStandIn, driver: SlackDriver, idle: Any, hooks: list[Any], hook_id: str
) -> None:
    hook = next(h for h in hooks if h.id == hook_id)
    out.write("== hook-secret-bot demo: a local Slack and a local Auth0 tenant ==\n")
    _say(out, "rita types", '/hook-secret add "Client Credentials Exchange" VENDOR_API_KEY')
    driver.slash_command(
        REQUESTER, 'add "Client Credentials Exchange" VENDOR_API_KEY', channel_id=ORIGIN
    )
    view = slack.wait_for_view(REQUESTER, callback_id=ids.CALLBACK_ADD)
    _say(
        out,
        "rita sees a form",
        " | ".join(b["label"]["text"] for b in view["blocks"] if b.get("type") == "input"),
    )
    driver.view_submission(
        REQUESTER,
        view,
        {
            ids.BLOCK_HOOK: {"selected_option": hook_option(hook).to_dict()},
            ids.BLOCK_SECRET_NAME: "VENDOR_API_KEY",
            ids.BLOCK_SECRET_VALUE: DEMO_VALUE,
            ids.BLOCK_REASON: "vendor rotated our key",
        },
    )
    idle()
    approval = slack.wait_for_message(APPROVALS, lambda m: bool(m.get("blocks")))
    _say(out, "#secret-approvals shows", _text(approval))
    _say(out, "rita sees (only her)", slack.ephemerals(REQUESTER)[-1].get("text", ""))
    _say(out, "rita clicks Approve on her own request", "")
    driver.block_action(REQUESTER, ids.ACTION_APPROVE, message=approval, channel_id=APPROVALS)
    idle()
    _say(out, "rita is told", slack.ephemerals(REQUESTER)[-1].get("text", ""))
    _say(out, "alex clicks Approve", "")
    driver.block_action(APPROVER, ids.ACTION_APPROVE, message=approval, channel_id=APPROVALS)
    idle()
    modal = slack.wait_for_view(APPROVER, callback_id=ids.CALLBACK_APPROVE)
    _say(out, "alex sees the approval modal", _text({"blocks": modal["blocks"]}))
    driver.view_submission(APPROVER, modal, {ids.BLOCK_COMMENT: "checked with the vendor"})
    idle()
    confirmation = slack.wait_for_message(ORIGIN, lambda m: "VENDOR_API_KEY" in m.get("text", ""))
    _say(out, "#platform shows", confirmation.get("text", ""))
    _say(out, "#secret-approvals now shows", _text(slack.messages(APPROVALS)[0]))


def _text(message: dict[str, Any]) -> str:
    parts = []
    for block in message.get("blocks", []):
        if block.get("type") == "section":
            parts.append(block["text"]["text"])
        elif block.get("type") == "context":
            parts += [e.get("text", "") for e in block.get("elements", [])]
        elif block.get("type") == "actions":
            parts.append("[" + "] [".join(e["text"]["text"] for e in block["elements"]) + "]")
    # Slack renders <!date^epoch^format|fallback> in the reader's time zone; show the fallback.
    return SLACK_DATE.sub(r"\1", "\n".join(parts) or str(message.get("text", "")))


def _say(out: TextIO, who: str, what: str) -> None:
    out.write(f"\n-- {who}" + (":\n" if what else "\n"))
    for line in what.splitlines():
        out.write(f"   {line}\n")
