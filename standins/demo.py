"""The local demo: the real app over real HTTP against the stand-ins, with no credentials.

Two local Auth0 tenants, dev and prod, served from a policy file (CONTRACT §6): a self-service
change in dev, then a prod change that needs two approvers, then the audit trail."""

from __future__ import annotations

import functools
import io
import json
import os
import shlex
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from bot.db.audit import AuditSink
from bot.db.encryption import generate_key
from bot.db.store import Store
from bot.logs import configure_logging
from bot.serve import lifecycle
from bot.settings import PolicySettings, load_serving_settings
from bot.slack import ids
from bot.slack.blocks.pickers import hook_option
from bot.slack.services import Services
from standins.auth0 import FULL_SCOPES, Auth0Sandbox
from standins.local import local_bot
from standins.mrkdwn import Renderer
from standins.slack import SlackDriver, SlackStandIn

REQUESTER, APPROVER, APPROVER2 = "U0RITA", "U0ALEX", "U0BEA"
ORIGIN, APPROVALS = "C0PLATFORM", "C0PRODAPPROVALS"
ACTION = "Enrich ID tokens"  # an action both tenants have
HOOK = "Client Credentials Exchange"  # a hook prod still has
DEV_SECRET, PROD_SECRET = "PARTNER_TOKEN", "VENDOR_API_KEY"
DEV_VALUE = "demo-dev-value-never-shown"
PROD_VALUE = "demo-prod-value-never-shown"
COMMENT = "checked with the vendor"
# The stand-ins' fixed, made-up credentials: nothing real is ever used by the demo. The bot
# reads each tenant's client secret from the variable the policy file names, as in production;
# the demo sets those variables for itself.
DEMO_SIGNING_SECRET = "demo-signing-secret"  # noqa: S105 - fake, for the local stand-in
TENANTS = {  # name: (domain, client id, variable, made-up client secret)
    "dev": ("dev.auth0.local", "demo-dev-client", "HOOK_SECRET_DEMO_DEV_CLIENT_SECRET"),
    "prod": ("prod.auth0.local", "demo-prod-client", "HOOK_SECRET_DEMO_PROD_CLIENT_SECRET"),
}
CLIENT_SECRETS = {
    "dev": "demo-dev-client-secret",
    "prod": "demo-prod-client-secret",
}
RULES = f"""\
[[rules]]
name = "dev self-service"
tenant = "dev"
requesters = ["{REQUESTER}"]
approvals = 0

[[rules]]
name = "prod two approvers"
tenant = "prod"
requesters = ["{REQUESTER}"]
approvers = ["{APPROVER}", "{APPROVER2}"]
channel = "{APPROVALS}"
approvals = 2
"""


def run_demo(out: TextIO | None = None) -> int:
    """Walk a change in each tenant from the slash command to the confirmation, printing what
    people see; keep the demo's database so that ``audit verify`` and ``audit export`` can
    read it."""
    out = out or sys.stdout
    logs = io.StringIO()
    configure_logging("WARNING", "console", logs)  # keep the story readable
    workdir = Path(tempfile.mkdtemp(prefix="hook-secret-bot-demo-"))
    database = workdir / "demo.db"
    with (
        SlackStandIn() as slack,
        _sandbox("dev") as dev,
        _sandbox("prod") as prod,
        _client_secrets(),
    ):
        _people(slack)
        actions = {
            "dev": dev.actions.add(ACTION, {"CRM_KEY": "dev-kept"}),
            "prod": prod.actions.add(ACTION, {"CRM_KEY": "prod-kept"}),
        }
        for sandbox in (dev, prod):
            sandbox.add_hook(HOOK, secrets={"LEGACY_KEY": "x" * 8})
        policy = workdir / "policy.toml"
        policy.write_text(_policy_text({"dev": dev, "prod": prod}), encoding="utf-8")
        settings = _settings(slack, policy, f"sqlite:///{database}")
        audit_lines = io.StringIO()
        store = Store(settings.database_url, AuditSink(audit_lines))
        store.migrate()
        story = Story(out, slack, Renderer(slack.user_name, slack.channel_name, ansi=_tty(out)))
        story.intro()
        with local_bot(settings, store, slack.team_id) as (url, services):
            story.driver = SlackDriver(slack, url + "/slack/events", DEMO_SIGNING_SECRET)
            story.idle = functools.partial(lifecycle.wait_idle, services)
            story.services = services
            story.self_service()
            story.two_approvals()
            story.driver.close()
        store.close()
        story.tenants_now({"dev": dev, "prod": prod}, actions)
        story.trail(audit_lines.getvalue())
        _kept(out, settings.database_url)
        places = {
            f"the {len(slack.calls)} Slack API calls": str(slack.calls),
            "the audit trail": audit_lines.getvalue(),
            "the logs": logs.getvalue(),
            "the database file": database.read_bytes().decode("latin-1"),
        }
        in_dev = dev.actions.deployed_secrets(actions["dev"])
        in_prod = prod.actions.deployed_secrets(actions["prod"])
        applied = (
            in_dev.get(DEV_SECRET) == DEV_VALUE
            and in_prod.get(PROD_SECRET) == PROD_VALUE
            and PROD_SECRET not in in_dev
            and DEV_SECRET not in in_prod
            and _approvers(audit_lines.getvalue(), PROD_SECRET) == [APPROVER, APPROVER2]
        )
        return _verdict(out, places, applied)


@contextmanager
def _sandbox(tenant: str) -> Iterator[Auth0Sandbox]:
    domain, client_id, _ = TENANTS[tenant]
    with Auth0Sandbox(domain, client_id, CLIENT_SECRETS[tenant], FULL_SCOPES) as sandbox:
        yield sandbox


@contextmanager
def _client_secrets() -> Iterator[None]:
    """The variables the policy file names, set to the sandboxes' made-up secrets while the
    demo runs (whatever they held before is put back)."""
    before = {variable: os.environ.get(variable) for _, _, variable in TENANTS.values()}
    for tenant, (_, _, variable) in TENANTS.items():
        os.environ[variable] = CLIENT_SECRETS[tenant]
    try:
        yield
    finally:
        for variable, value in before.items():
            if value is None:
                os.environ.pop(variable, None)
            else:
                os.environ[variable] = value


def _policy_text(sandboxes: dict[str, Auth0Sandbox]) -> str:
    tenants = [
        f'[tenants.{name}]\ndomain = "{domain}"\nclient_id = "{client_id}"\n'
        f'client_secret_env = "{variable}"\nbase_url = "{sandboxes[name].url}"\n'
        for name, (domain, client_id, variable) in TENANTS.items()
    ]
    return "\n".join([*tenants, RULES])


def _settings(slack: SlackStandIn, policy: Path, database_url: str) -> PolicySettings:
    settings = load_serving_settings(
        _env_file=None,
        hook_secret_policy_file=str(policy),
        slack_bot_token=slack.bot_token,
        slack_signing_secret=DEMO_SIGNING_SECRET,
        slack_api_url=slack.api_url,
        hook_secret_encryption_key=generate_key(),
        database_url=database_url,
    )
    if not isinstance(settings, PolicySettings):  # pragma: no cover - the file is given
        raise TypeError("the demo serves a policy file")
    return settings


def _people(slack: SlackStandIn) -> None:
    slack.add_user(REQUESTER, "rita")
    slack.add_user(APPROVER, "alex")
    slack.add_user(APPROVER2, "bea")
    slack.add_channel(ORIGIN, "platform")
    slack.add_channel(APPROVALS, "prod-approvals")


def _tty(out: TextIO) -> bool:
    isatty: Callable[[], bool] | None = getattr(out, "isatty", None)
    return bool(isatty and isatty())


def _approvers(lines: str, secret_name: str) -> list[str]:
    """Who approved the request for ``secret_name``, as its ``request.approved`` says."""
    for line in lines.splitlines():
        record = json.loads(line)
        if record["event"] == "request.approved" and record["secret_name"] == secret_name:
            return list(record.get("approvers") or [])
    return []


class Story:
    """What each person does and sees, in order, written as Slack would show it."""

    driver: SlackDriver
    idle: Callable[[], object]
    services: Services

    def __init__(self, out: TextIO, slack: SlackStandIn, renderer: Renderer) -> None:
        self.out, self.slack, self.md = out, slack, renderer

    def intro(self) -> None:
        self.out.write(
            "== hook-secret-bot demo: the real app, a local Slack workspace and two local "
            "Auth0 tenants, dev and prod ==\n"
            "   The policy file (HOOK_SECRET_POLICY_FILE) names the two tenants, each with its "
            "client secret in a variable, and the rule that decides for each:\n\n"
        )
        for line in RULES.splitlines():
            self.out.write(f"   {self._names(line)}\n".rstrip() + "\n")

    def self_service(self) -> None:
        """Rita adds a secret to dev's action: her own submission applies it."""
        self.out.write('\n== dev: rule "dev self-service", no approval needed ==\n')
        self._request("dev", DEV_SECRET, DEV_VALUE, "new partner sandbox", picker=True)
        done = self.slack.wait_for_message(ORIGIN, lambda m: DEV_SECRET in m.get("text", ""))
        self.say(
            "the bot PATCHes dev's action at once, deploys it, and posts in #platform",
            self.md.render(done.get("text", "")),
        )

    def two_approvals(self) -> None:
        """Rita adds a secret to prod's action; Alex and then Bea approve; it is deployed."""
        self.out.write(
            '\n== prod: rule "prod two approvers", two of @alex and @bea must approve ==\n'
        )
        self._request("prod", PROD_SECRET, PROD_VALUE, "vendor rotated our key")
        approval = self.slack.wait_for_message(
            APPROVALS, lambda m: PROD_SECRET in m.get("text", "") and bool(m.get("blocks"))
        )
        self.say("the bot posts in #prod-approvals", self.blocks(approval))
        self.say("@rita clicks [Approve] on her own request", "")
        self.driver.block_action(
            REQUESTER, ids.ACTION_APPROVE, message=approval, channel_id=APPROVALS
        )
        self.idle()
        self.say("only @rita sees", self.latest_ephemeral(REQUESTER))
        self._approve(APPROVER, approval, COMMENT)
        self.say(
            "the bot updates its message in #prod-approvals (one more approval needed)",
            self.blocks(self.current(approval)),
        )
        self._approve(APPROVER2, approval, None)
        done = self.slack.wait_for_message(ORIGIN, lambda m: PROD_SECRET in m.get("text", ""))
        self.say(
            "the bot PATCHes prod's action, deploys it, and posts in #platform",
            self.md.render(done.get("text", "")),
        )
        self.say(
            "the bot's message in #prod-approvals now reads", self.blocks(self.current(approval))
        )

    def _request(
        self, tenant: str, name: str, value: str, reason: str, *, picker: bool = False
    ) -> None:
        command = f'/hook-secret add "{tenant}/{ACTION}" {name}'
        self.say("@rita types in #platform", command)
        self.driver.slash_command(REQUESTER, command.split(" ", 1)[1], channel_id=ORIGIN)
        self.idle()
        view = self.slack.wait_for_view(REQUESTER, callback_id=ids.CALLBACK_ADD)
        if picker:
            self.say(
                "the form's target picker offers @rita what the rules let her request",
                self.options(view),
            )
        found = self.services.fleet.find(f"{tenant}/{ACTION}").target
        if found is None:  # pragma: no cover - the sandbox has it
            raise LookupError(f"{tenant}/{ACTION}")
        values = {
            ids.BLOCK_HOOK: {"selected_option": hook_option(found).to_dict()},
            ids.BLOCK_SECRET_NAME: name,
            ids.BLOCK_SECRET_VALUE: value,
            ids.BLOCK_REASON: reason,
        }
        label = hook_option(found).to_dict()["text"]["text"]
        typed = {
            ids.BLOCK_HOOK: f"{label}, under “{tenant} · Actions”",
            ids.BLOCK_SECRET_VALUE: f"(a value of {len(value)} characters, hidden here)",
        }
        self.say(
            f"a form “{view['title']['text']}” opens for @rita; she fills it in and submits",
            "\n".join(
                f"{label}: {typed.get(block, values.get(block, ''))}"
                for block, label in _inputs(view)
            ),
        )
        self.driver.view_submission(REQUESTER, view, values)
        self.idle()

    def _approve(self, user: str, approval: dict[str, Any], comment: str | None) -> None:
        who = f"@{self.slack.user_name(user)}"
        self.driver.block_action(user, ids.ACTION_APPROVE, message=approval, channel_id=APPROVALS)
        self.idle()
        modal = self.slack.wait_for_view(user, callback_id=ids.CALLBACK_APPROVE)
        if comment:
            self.say(f"{who} clicks [Approve]; a form “{modal['title']['text']}” opens", "")
            self.say(f"{who} types a comment and clicks Approve", f"Comment: {comment}")
        else:
            self.say(f"{who} clicks [Approve] and submits the approval form", "")
        self.driver.view_submission(user, modal, {ids.BLOCK_COMMENT: comment})
        self.idle()

    def options(self, view: dict[str, Any]) -> str:
        """The target picker's option groups as the requester sees them."""
        ack = self.driver.block_suggestion(REQUESTER, ids.BLOCK_HOOK, ids.BLOCK_HOOK, "", view)
        groups = ack.json().get("option_groups", [])
        return "\n".join(
            f"{group['label']['text']}: "
            + ", ".join(option["text"]["text"] for option in group["options"])
            for group in groups
        )

    def current(self, message: dict[str, Any]) -> dict[str, Any]:
        """The message at ``message``'s ts as it reads now (after updates)."""
        return next(m for m in self.slack.messages(APPROVALS) if m["ts"] == message["ts"])

    def tenants_now(self, sandboxes: dict[str, Auth0Sandbox], actions: dict[str, str]) -> None:
        """What each tenant's action runs after the story (names only)."""
        for tenant, sandbox in sandboxes.items():
            action = actions[tenant]
            self.say(
                f"in Auth0, {tenant} · action {ACTION} now runs",
                f"version {sandbox.actions.deployed_number(action)} with secrets "
                f"{', '.join(sorted(sandbox.actions.deployed_secrets(action)))}",
            )
        self.out.write(
            "   (values stay in Auth0; CRM_KEY kept its value: the bot sent it by name only; "
            "the bot's database kept only ciphertext, erased once applied)\n"
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
        self.out.write(
            "\n== The audit trail (hook-secret-bot audit export prints it), each record's "
            "[tenant · rule] first ==\n"
        )
        for line in lines.splitlines():
            record = json.loads(line)
            when = datetime.fromisoformat(record["timestamp"]).astimezone(self.md.tz)
            detail = ""
            if record["event"] == "approval.added":
                detail += f"  {record['approvals']} of {record['required']}"
            if record.get("approvers"):
                people = ", ".join(f"@{self.slack.user_name(p)}" for p in record["approvers"])
                detail += f"  approvers {people}"
            if record.get("comment"):
                detail += f'  comment: "{record["comment"]}"'
            if record.get("action_version") is not None:
                detail += f"  deployed as version {record['action_version']}"
            place = f"[{record['tenant']} · {record['rule']}]"
            actor = f"@{self.slack.user_name(record['actor'])}"
            self.out.write(
                f"  #{record['id']:<2} {when:%H:%M:%S}  {place:<27} {record['event']:<18} "
                f"by {actor:<5}  {record['secret_name']}  {record['outcome']}{detail}\n"
            )

    def say(self, who: str, what: str) -> None:
        self.out.write(f"\n-- {who}" + (":\n" if what else "\n"))
        for line in what.splitlines():
            self.out.write(f"   {line}\n")

    def _names(self, line: str) -> str:
        """A line of the policy file, the names people know beside the Slack ids."""
        notes = []
        for user, name in ((REQUESTER, "rita"), (APPROVER, "alex"), (APPROVER2, "bea")):
            if f'"{user}"' in line:
                notes.append(f"@{name}")
        if f'"{APPROVALS}"' in line:
            notes.append("#prod-approvals")
        return f"{line:<42}# {', '.join(notes)}" if notes else line


def _inputs(view: dict[str, Any]) -> list[tuple[str, str]]:
    return [(b["block_id"], b["label"]["text"]) for b in view["blocks"] if b.get("type") == "input"]


def _kept(out: TextIO, database_url: str) -> None:
    env = f"DATABASE_URL={shlex.quote(database_url)}"
    out.write(
        "\n== The demo's database is kept ==\n"
        f"   {database_url.removeprefix('sqlite:///')}\n"
        f"   {env} hook-secret-bot audit verify\n"
        f"   {env} hook-secret-bot audit export\n"
    )


def _verdict(out: TextIO, places: dict[str, str], applied: bool) -> int:
    values = (DEV_VALUE, PROD_VALUE)
    leaked = [where for where, text in places.items() if any(v in text for v in values)]
    if leaked or not applied:
        out.write(
            "\nNOT proven: "
            + (f"a value appeared in {', '.join(leaked)} (a bug!)" if leaked else "")
            + ("" if applied else " the secrets did not reach Auth0 as the rules say")
            + "\n"
        )
        return 1
    out.write(
        "\nProven: the values typed into the forms reached Auth0 as each tenant's rule says "
        "(dev's at once, prod's only after two other people approved), each only in its own "
        f"tenant, and appeared in none of: {'; '.join(places)}.\n"
    )
    return 0
