"""In-process harness: the real app over real HTTP in this process, between the stand-ins."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from bot.db.audit import AuditSink
from bot.db.audit_chain import chain_keys
from bot.db.encryption import generate_key
from bot.db.models import SecretRequest
from bot.db.store import Store
from bot.serve import lifecycle
from bot.settings import Mode, PolicySettings, Settings, load_app_settings
from bot.slack import ids
from bot.slack.services import Services
from standins.auth0 import Auth0Sandbox
from standins.local import local_bot
from standins.slack import SlackDriver, SlackStandIn
from tests.harness.people import (
    APPROVALS,
    APPROVER,
    APPROVER2,
    BOT_TOKEN,
    CLIENT_SECRET,
    GROUPIE,
    ORIGIN,
    OUTSIDER,
    REQUESTER,
    SIGNING_SECRET,
    secret_posts,
)

__all__ = [  # the shared names this module's users import from it
    "APPROVALS",
    "APPROVER",
    "APPROVER2",
    "BOT_TOKEN",
    "GROUPIE",
    "ORIGIN",
    "OUTSIDER",
    "REQUESTER",
    "SIGNING_SECRET",
    "secret_posts",
]


@dataclass
class Clock:
    """A controllable ``now`` for expiry tests."""

    moment: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


@dataclass
class Bot:
    """A running bot with its stand-ins, for one test."""

    slack: SlackStandIn
    auth0: Auth0Sandbox
    driver: SlackDriver
    services: Services
    store: Store
    audit_stream: io.StringIO
    clock: Clock
    hook_id: str
    url: str
    settings: Settings | PolicySettings

    def audit(self) -> list[dict[str, Any]]:
        """Audit lines printed so far, once background work (refusals are audited after the
        ack) has settled."""
        assert lifecycle.wait_idle(self.services, 30)
        return [json.loads(line) for line in self.audit_stream.getvalue().splitlines()]

    def events(self) -> list[str]:
        """Names of the audit events printed so far."""
        return [record["event"] for record in self.audit()]

    def open_form(self, user: str = REQUESTER, text: str = "add") -> dict[str, Any]:
        """Run the command and return the modal it opened."""
        mark = self.slack.mark()
        ack = self.driver.slash_command(user, text, channel_id=ORIGIN)
        assert ack.status == 200, ack.body
        self.slack.wait_for("views.open", after=mark)
        return self.slack.view_for_user(user)

    def hook_option(self, hook_id: str | None = None) -> dict[str, Any]:
        """The selected_option Slack would send for a hook chosen in the picker."""
        hook_id = hook_id or self.hook_id
        hook = next(h for h in self.services.targets.hooks.listing() if h.id == hook_id)
        from bot.slack.blocks.pickers import hook_option

        return {"selected_option": hook_option(hook).to_dict()}

    def submit(
        self,
        view: dict[str, Any],
        *,
        name: str = "API_KEY",
        value: str | None = "s3cr3t-value",
        reason: str | None = "rotate vendor key",
        hook: dict[str, Any] | None = None,
        user: str = REQUESTER,
        validate: bool = True,
    ) -> Any:
        """Fill and submit the request modal."""
        values: dict[str, Any] = {
            ids.BLOCK_HOOK: hook or self.hook_option(),
            ids.BLOCK_SECRET_NAME: name,
            ids.BLOCK_REASON: reason,
        }
        if any(b.get("block_id") == ids.BLOCK_SECRET_VALUE for b in view["blocks"]):
            values[ids.BLOCK_SECRET_VALUE] = value
        return self.driver.view_submission(user, view, values, validate=validate)

    def request_approval(self, **kwargs: Any) -> dict[str, Any]:
        """Submit a request and return the approval message posted for it."""
        ack = self.submit(self.open_form(), **kwargs)
        assert ack.status == 200 and not ack.body, ack.body
        message = self.slack.wait_for_message(
            APPROVALS,
            lambda m: "blocks" in m and any(b.get("type") == "actions" for b in m["blocks"]),
        )
        self.drain()  # the bot has also noted where the message is and told the requester
        return message

    def click(
        self, message: dict[str, Any], action: str = ids.ACTION_APPROVE, user: str = APPROVER
    ) -> Any:
        """Click a button of the approval message."""
        return self.driver.block_action(user, action, message=message, channel_id=APPROVALS)

    def decide(
        self,
        message: dict[str, Any],
        *,
        approve: bool = True,
        user: str = APPROVER,
        comment: str | None = None,
    ) -> Any:
        """Click Approve/Reject and submit the decision modal."""
        mark = self.slack.mark()
        ack = self.click(message, ids.ACTION_APPROVE if approve else ids.ACTION_REJECT, user)
        assert ack.status == 200
        self.slack.wait_for("views.open", after=mark)
        callback = ids.CALLBACK_APPROVE if approve else ids.CALLBACK_REJECT
        view = self.slack.wait_for_view(user, callback_id=callback)
        return self.driver.view_submission(user, view, {ids.BLOCK_COMMENT: comment})

    def drain(self) -> None:
        """Wait until background work queued so far (and what it queued) has finished."""
        assert lifecycle.wait_idle(self.services, 30)


def settings_for(slack: SlackStandIn, auth0: Auth0Sandbox, db_url: str, **extra: Any) -> Settings:
    """Settings as an operator would write them, pointed at the stand-ins."""
    values: dict[str, Any] = {
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": slack.api_url,
        "auth0_domain": auth0.domain,
        "auth0_client_id": auth0.client_id,
        "auth0_client_secret": CLIENT_SECRET,
        "auth0_base_url": auth0.url,
        "hook_secret_requesters": f"{REQUESTER},S0REQS",
        "hook_secret_approvers": f"{APPROVER},{APPROVER2},S0APPS",
        "hook_secret_approval_channel": APPROVALS,
        "database_url": db_url,
        "hook_secret_encryption_key": generate_key(),
    }
    values.update(extra)
    return load_app_settings(Mode.RUN, _env_file=None, **values)


@dataclass(frozen=True)
class Workspace:
    """The stand-ins and settings a bot is served with; serve it again to restart it."""

    slack: SlackStandIn
    auth0: Auth0Sandbox
    hook_id: str
    settings: Settings


@contextmanager
def workspace(db_url: str, **settings_extra: Any) -> Iterator[Workspace]:
    """Start the Slack stand-in and the Auth0 sandbox with the usual people, channels, hook."""
    with SlackStandIn(bot_token=BOT_TOKEN) as slack, Auth0Sandbox() as auth0:
        for user, name in (
            (REQUESTER, "rita"),
            (APPROVER, "alex"),
            (APPROVER2, "bea"),
            (OUTSIDER, "olga"),
            (GROUPIE, "gus"),
        ):
            slack.add_user(user, name)
        slack.add_channel(ORIGIN, "general")
        slack.add_channel(APPROVALS, "secret-approvals")
        slack.add_usergroup("S0REQS", "requesters", [GROUPIE])
        slack.add_usergroup("S0APPS", "approvers", [])
        hook_id = auth0.add_hook("Client Credentials Exchange", secrets={"EXISTING": "old"})
        yield Workspace(slack, auth0, hook_id, settings_for(slack, auth0, db_url, **settings_extra))


@contextmanager
def running_bot(
    db_url: str,
    *,
    store: Store | None = None,
    auth0_options: dict[str, Any] | None = None,
    **settings_extra: Any,
) -> Iterator[Bot]:
    """Start the stand-ins and the bot; stop everything afterwards."""
    with (
        workspace(db_url, **settings_extra) as ws,
        serve(
            ws.settings, ws.slack, ws.auth0, ws.hook_id, store, auth0_options=auth0_options
        ) as bot,
    ):
        yield bot


@contextmanager
def serve(
    settings: Settings | PolicySettings,
    slack: SlackStandIn,
    auth0: Auth0Sandbox,
    hook_id: str,
    store: Store | None = None,
    clock: Clock | None = None,
    *,
    auth0_options: dict[str, Any] | None = None,
) -> Iterator[Bot]:
    """Build the app from settings and serve it on 127.0.0.1 (a restart builds a new one)."""
    stream = io.StringIO()
    owned = store is None
    store = store or Store(settings.database_url, AuditSink(stream))
    store.sink = AuditSink(stream)
    store.migrate()
    if store.chain is None:  # keyed as the bot keys it (runtime.open_store)
        store.chain = chain_keys(settings.encryption_keys, settings.database_url, create=True)
    clock = clock or Clock()
    store.pinned = clock  # leases and expiry run on the database's clock: pinned to the test's
    options: dict[str, Any] = {"rate_limit_deadline": 5.0, **(auth0_options or {})}
    with local_bot(settings, store, slack.team_id, clock, **options) as (url, services):
        driver = SlackDriver(slack, url + "/slack/events", SIGNING_SECRET)
        try:
            yield Bot(slack, auth0, driver, services, store, stream, clock, hook_id, url, settings)
        finally:
            driver.close()
    if owned:
        store.close()


def request_id_of(message: dict[str, Any]) -> str:
    """The request id an approval message's Approve button carries."""
    for block in message.get("blocks", []):
        for element in block.get("elements", []):
            if element.get("action_id") == ids.ACTION_APPROVE:
                return str(element["value"])
    raise LookupError("no Approve button in the message")


def all_requests(store: Store) -> list[SecretRequest]:
    """Every request row in the database."""
    with store.session() as session:
        return list(session.execute(select(SecretRequest)).scalars())


def shown_texts(slack: SlackStandIn) -> list[str]:
    """Every mrkdwn string the bot showed in Slack (message texts, mrkdwn objects, responses),
    and the plain_text sections in which it shows what people typed."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn" and isinstance(node.get("text"), str):
                found.append(node["text"])
            text = node.get("text")
            # The plain_text sections are where the bot shows what people typed.
            if node.get("type") == "section" and isinstance(text, dict):
                found.extend([str(text.get("text"))] if text.get("type") == "plain_text" else [])
            for key, value in node.items():
                if key != "text" or not isinstance(value, str):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    payloads: list[Any] = [
        c.args for c in slack.calls if c.method.startswith("chat.") or c.method.startswith("views.")
    ]
    payloads += [r.payload for r in slack.responses(include_rejected=True)]
    payloads += slack.ephemerals()
    for payload in payloads:
        if isinstance(payload.get("text"), str):
            found.append(payload["text"])  # a message's top-level text is mrkdwn
        walk(payload)
    return found


def delete_hook(auth0: Auth0Sandbox, hook_id: str) -> None:
    """Delete a hook as an administrator would in the dashboard (the sandbox has no call for it)."""
    with auth0._lock:
        del auth0._hooks[hook_id]
