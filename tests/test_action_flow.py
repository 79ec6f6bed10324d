"""Auth0 Action secrets through the whole flow, end to end over real HTTP: the picker, the
request, the approval, one whole-list PATCH that keeps every other secret, one deploy, and the
redacted confirmation naming the deployed version."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bot.approvals.states import State
from bot.db.models import SecretRequest
from bot.slack import answers, ids
from bot.slack.blocks.pickers import hook_option
from bot.targets import ActionTarget, TargetKind
from standins.auth0 import FULL_SCOPES, RecordedRequest
from tests.harness.inprocess import (
    APPROVALS,
    APPROVER,
    ORIGIN,
    REQUESTER,
    Bot,
    Clock,
    request_id_of,
    serve,
    workspace,
)

ACTION = "Enrich tokens"
OTHERS = {"ONE": "value-one", "TWO": "value-two", "THREE": "value-three"}
VALUE = "n3w-action-value-CANARY"


@dataclass
class Scene:
    """A bot whose tenant holds one deployed action with three secrets."""

    bot: Bot
    action_id: str

    def option(self) -> dict[str, Any]:
        """The action as the picker offers it."""
        found = self.bot.services.targets[TargetKind.ACTION].find(self.action_id)
        assert found is not None
        return {"selected_option": hook_option(found).to_dict()}

    def request(self, command: str, name: str, value: str | None = VALUE) -> dict[str, Any]:
        """Run the command, fill the form with the action, and return the approval message."""
        view = self.bot.open_form(text=command)
        ack = self.bot.submit(view, name=name, value=value, hook=self.option())
        assert ack.status == 200 and not ack.body, ack.body
        message = self.bot.slack.wait_for_message(
            APPROVALS,
            lambda m: name in m["text"] and any(b.get("type") == "actions" for b in m["blocks"]),
        )
        self.bot.drain()
        return message

    def change(self, command: str, name: str, value: str | None = VALUE) -> str:
        """Request and approve one change; its request id."""
        message = self.request(command, name, value)
        assert self.bot.decide(message).status == 200
        self.bot.drain()
        return request_id_of(message)

    def calls(self, method: str, suffix: str) -> list[RecordedRequest]:
        """The sandbox's requests to this action with ``method`` ending in ``suffix``."""
        path = f"/api/v2/actions/actions/{self.action_id}{suffix}"
        return [r for r in self.bot.auth0.requests if r.method == method and r.path == path]


def mentioning(text: str) -> Callable[[dict[str, Any]], bool]:
    """A message predicate: its text holds ``text``."""
    return lambda message: text in message["text"]


@contextmanager
def scene(db_url: str, **settings: Any) -> Iterator[Scene]:
    """A tenant granting the action scopes, with one action holding three secrets."""
    with workspace(db_url, **settings) as ws:
        ws.auth0.set_scopes(*FULL_SCOPES)
        action_id = ws.auth0.actions.add(ACTION, dict(OTHERS))
        with serve(ws.settings, ws.slack, ws.auth0, ws.hook_id, clock=Clock()) as bot:
            yield Scene(bot, action_id)


def test_picker_offers_actions_and_hooks_in_groups(sqlite_url: str) -> None:
    """The options load answers groups Actions and Hooks; an action's value is action:{id}."""
    with scene(sqlite_url) as s:
        view = s.bot.open_form()
        ack = s.bot.driver.block_suggestion(REQUESTER, ids.BLOCK_HOOK, ids.BLOCK_HOOK, "", view)
        assert ack.status == 200 and not ack.problems
        groups = ack.json()["option_groups"]
        assert [g["label"]["text"] for g in groups] == ["Actions", "Hooks"]
        assert [o["value"] for o in groups[0]["options"]] == [f"action:{s.action_id}"]
        assert groups[0]["options"][0]["text"]["text"] == f"{ACTION} (post-login)"
        assert [o["value"] for o in groups[1]["options"]] == [s.bot.hook_id]


def test_add_rotate_remove_keep_the_other_secrets_one_patch_and_one_deploy_each(
    db_url: str,
) -> None:
    """Add, rotate and remove on an action holding three other secrets: each change is one
    PATCH carrying only its own value (the others name-only) and one deploy; the deployed
    values of the others never change; the audit names the action and the deployed version."""
    with scene(db_url) as s:
        steps = [
            ("add", "NEW_KEY", VALUE, "secret.added"),
            ("update", "ONE", "rotated-one", "secret.updated"),
            ("remove", "TWO", None, "secret.removed"),
        ]
        for n, (command, name, value, event) in enumerate(steps, start=1):
            request_id = s.change(command, name, value)
            row = s.bot.store.get(request_id)
            assert row is not None and row.state == State.APPLIED, row and row.failure_reason
            assert row.value_ciphertext is None and row.apply_phase == "deployed"
            patches, deploys = s.calls("PATCH", ""), s.calls("POST", "/deploy")
            assert len(patches) == n and len(deploys) == n
            sent = patches[-1].json()["secrets"]
            with_values = [e for e in sent if "value" in e]
            if value is None:
                assert with_values == [] and name not in {e["name"] for e in sent}
            else:
                assert with_values == [{"name": name, "value": value}]
            version = s.bot.auth0.actions.deployed_number(s.action_id)
            assert version == 1 + n
            applied = s.bot.audit()[-1]
            assert applied["event"] == event
            assert applied["target"] == "action" and applied["action_id"] == s.action_id
            assert applied["hook_id"] is None and applied["action_version"] == version
            confirmation = s.bot.slack.wait_for_message(ORIGIN, mentioning(f"`{name}`"))
            assert ACTION in confirmation["text"] and f"version {version}" in confirmation["text"]
        deployed = s.bot.auth0.actions.deployed_secrets(s.action_id)
        assert deployed == {"ONE": "rotated-one", "THREE": "value-three", "NEW_KEY": VALUE}
        phases = [r["outcome"] for r in s.bot.audit() if r["event"] == "apply.phase"]
        assert phases == ["planned", "patched", "deploy_requested", "deployed"] * 3
        assert "CANARY" not in s.bot.audit_stream.getvalue()
        assert "CANARY" not in str(s.bot.slack.calls)


def test_an_undeployed_draft_is_refused_without_a_patch(sqlite_url: str) -> None:
    """Someone left undeployed edits on the action: deploying would publish them, so the
    change fails `draft_not_deployed` before any PATCH, and the requester is told."""
    with scene(sqlite_url) as s:
        message = s.request("update", "ONE", "rotated-one")
        s.bot.auth0.actions.edit(s.action_id, {"DRAFTED": "unfinished"})
        s.bot.decide(message)
        s.bot.drain()
        row = s.bot.store.get(request_id_of(message))
        assert row is not None and row.state == State.FAILED
        assert row.failure_reason == "draft_not_deployed"
        assert s.calls("PATCH", "") == [] and s.calls("POST", "/deploy") == []
        failed = s.bot.audit()[-1]
        assert failed["event"] == "request.failed" and failed["outcome"] == "draft_not_deployed"
        told = s.bot.slack.wait_for_ephemeral(REQUESTER, lambda m: "failed" in m["text"])
        assert request_id_of(message) in told["text"] and f"on action {ACTION}" in told["text"]
        assert "Nothing was changed by it." in told["text"]
        assert s.bot.auth0.actions.deployed_secrets(s.action_id) == OTHERS


def test_a_failed_build_is_reported_without_a_deploy(sqlite_url: str) -> None:
    """The PATCH lands but the draft's build fails: `build_failed`, nothing deployed."""
    with scene(sqlite_url) as s:
        message = s.request("update", "ONE", "rotated-one")
        s.bot.auth0.actions.fail_next_builds(1)
        s.bot.decide(message)
        s.bot.drain()
        row = s.bot.store.get(request_id_of(message))
        assert row is not None and row.state == State.FAILED
        assert row.failure_reason == "build_failed" and row.apply_phase == "patched"
        assert len(s.calls("PATCH", "")) == 1 and s.calls("POST", "/deploy") == []
        assert s.bot.auth0.actions.deployed_secrets(s.action_id) == OTHERS
        assert s.bot.audit()[-1]["outcome"] == "build_failed"
        told = s.bot.slack.wait_for_ephemeral(REQUESTER, mentioning("failed"))
        assert "Nothing was deployed" in told["text"] and "Nothing was changed" not in told["text"]


def test_an_edit_between_the_read_and_the_patch_is_detected_and_nothing_is_lost(
    sqlite_url: str,
) -> None:
    """Someone rotates ONE in the Dashboard just after the bot's last read: the PATCH keeps
    ONE's new value (name-only), the answer shows ONE's stamp moved, so the change ends
    `concurrent_edit`, nothing is deployed, and the people involved are told."""
    armed: list[int] = []
    with workspace(sqlite_url) as ws:
        ws.auth0.set_scopes(*FULL_SCOPES)
        action_id = ws.auth0.actions.add(ACTION, dict(OTHERS))

        def observe(operation: str, status: int | str, elapsed: float) -> None:
            # The apply reads once before its PATCH; the Dashboard edit lands right after it.
            if operation == "get_action" and armed:
                armed.append(1)
                if len(armed) == 2:
                    ws.auth0.actions.edit(action_id, {"ONE": "dashboard-one"})

        options = {"observer": observe}
        with serve(ws.settings, ws.slack, ws.auth0, ws.hook_id, auth0_options=options) as bot:
            s = Scene(bot, action_id)
            message = s.request("update", "TWO", "rotated-two")
            armed.append(0)
            bot.decide(message)
            bot.drain()
            row = bot.store.get(request_id_of(message))
            assert row is not None and row.state == State.FAILED
            assert row.failure_reason == "concurrent_edit"
            assert len(s.calls("PATCH", "")) == 1 and s.calls("POST", "/deploy") == []
            draft = ws.auth0.actions.draft_secrets(action_id)
            assert draft == {"ONE": "dashboard-one", "TWO": "rotated-two", "THREE": "value-three"}
            assert ws.auth0.actions.deployed_secrets(action_id) == OTHERS
            told = bot.slack.wait_for_ephemeral(REQUESTER, lambda m: "failed" in m["text"])
            assert "ONE" in told["text"]
            assert any("failed" in m["text"] for m in bot.slack.messages(APPROVER))


def test_add_command_prefills_an_action_by_name_or_id(sqlite_url: str) -> None:
    """`/hook-secret add "Enrich tokens" NAME` and `add action:{id}` select the action."""
    with scene(sqlite_url) as s:
        for key in (f'"{ACTION}"', f"action:{s.action_id}"):
            mark = s.bot.slack.mark()
            s.bot.driver.slash_command(REQUESTER, f"add {key} NEW_KEY", channel_id=ORIGIN)
            s.bot.slack.wait_for("views.update", after=mark)
            view = s.bot.slack.view_for_user(REQUESTER)
            picker = next(b for b in view["blocks"] if b.get("block_id") == ids.BLOCK_HOOK)
            assert picker["element"]["initial_option"]["value"] == f"action:{s.action_id}"
            name = next(b for b in view["blocks"] if b.get("block_id") == ids.BLOCK_SECRET_NAME)
            assert name["element"]["initial_value"] == "NEW_KEY"


def test_list_shows_an_actions_names_stamps_provenance_cap_and_undeployed_edits(
    sqlite_url: str,
) -> None:
    """`list` for an action: every name with Auth0's updated_at, who changed it through the
    bot, the count against 30, and a warning when the draft holds undeployed changes."""
    with scene(sqlite_url) as s:
        s.change("update", "ONE", "rotated-one")
        s.bot.auth0.actions.edit(s.action_id, {"DRAFTED": "unfinished"})
        s.bot.driver.slash_command(REQUESTER, f'list "{ACTION}"', channel_id=ORIGIN)
        listed = s.bot.slack.wait_for_ephemeral(REQUESTER, mentioning("of 30 secrets"))
        lines = listed["text"].splitlines()
        assert lines[0] == f"*{ACTION}* (`{s.action_id}`): 4 of 30 secrets"
        assert "not deployed" in lines[1]
        one = next(line for line in lines if line.startswith("• `ONE`"))
        assert "updated in Auth0 " in one and f"rotated by <@{REQUESTER}>" in one
        assert f"approved by <@{APPROVER}>" in one
        three = next(line for line in lines if line.startswith("• `THREE`"))
        assert three.endswith("set outside the bot") and "updated in Auth0 " in three
        assert "value-" not in listed["text"] and "unfinished" not in listed["text"]


def _failed(s: Scene, message: dict[str, Any]) -> SecretRequest:
    """Approve and return the request's row once the apply has ended."""
    assert s.bot.decide(message).status == 200
    s.bot.drain()
    row = s.bot.store.get(request_id_of(message))
    assert row is not None and row.state == State.FAILED and row.value_ciphertext is None
    return row


def test_without_create_actions_nothing_is_patched_and_the_scope_is_named(
    sqlite_url: str,
) -> None:
    """update:actions alone cannot publish: the bot stops before the PATCH (which would leave
    an undeployed draft) and says that deploying needs create:actions."""
    with scene(sqlite_url) as s:
        message = s.request("update", "ONE", "rotated-one")
        s.bot.auth0.set_scopes("read:hooks", "read:actions", "update:actions")
        s.bot.auth0.revoke_tokens()
        row = _failed(s, message)
        assert row.failure_reason == "insufficient_scope"
        assert s.calls("PATCH", "") == [] and s.calls("POST", "/deploy") == []
        told = s.bot.slack.wait_for_ephemeral(REQUESTER, mentioning("failed"))
        assert "create:actions" in told["text"]


def test_a_deleted_action_fails_action_not_found(sqlite_url: str) -> None:
    """The action was deleted after the request: `action_not_found`, nothing sent."""
    with scene(sqlite_url) as s:
        message = s.request("update", "ONE", "rotated-one")
        s.bot.auth0.fail_next(1, 404, method="GET")
        row = _failed(s, message)
        assert row.failure_reason == "action_not_found"
        assert s.calls("PATCH", "") == []
        assert s.bot.audit()[-1]["outcome"] == "action_not_found"
        target = s.bot.services.targets[TargetKind.ACTION]
        assert isinstance(target, ActionTarget) and target.catalog.cached(s.action_id) is None


def test_a_full_action_is_refused_in_the_form_and_at_apply(sqlite_url: str) -> None:
    """30 secrets: the form refuses an add (`action_full`); filled up after the request, the
    apply fails `action_full` without a PATCH."""
    with scene(sqlite_url) as s:
        message = s.request("add", "LATE_KEY")
        s.bot.auth0.actions.edit(s.action_id, {f"F_{n}": "x" for n in range(27)})
        s.bot.auth0.actions.deploy_draft(s.action_id)
        row = _failed(s, message)
        assert row.failure_reason == "action_full" and s.calls("PATCH", "") == []
        view = s.bot.open_form()
        ack = s.bot.submit(view, name="ONE_MORE", hook=s.option())
        assert ack.json()["errors"] == {ids.BLOCK_HOOK: answers.ACTION_FULL}
        refused = s.bot.audit()[-1]
        assert refused["event"] == "request.refused" and refused["outcome"] == "action_full"


def test_a_tenant_without_hooks_offers_actions_and_says_why(sqlite_url: str) -> None:
    """Hooks switched off: the picker still offers the action; the Hooks group says why."""
    with scene(sqlite_url) as s:
        s.bot.auth0.hooks_disabled = True
        view = s.bot.open_form()
        ack = s.bot.driver.block_suggestion(REQUESTER, ids.BLOCK_HOOK, ids.BLOCK_HOOK, "", view)
        assert ack.status == 200 and not ack.problems
        actions, hooks = ack.json()["option_groups"]
        assert [o["value"] for o in actions["options"]] == [f"action:{s.action_id}"]
        (why,) = hooks["options"]
        assert why["value"] == "!unavailable" and "disabled" in why["text"]["text"]


def test_denials_and_refusals_about_an_action_name_it_as_the_contract_says(
    sqlite_url: str,
) -> None:
    """An audit event about an action request carries ``target`` = action and ``action_id``,
    with ``hook_id`` null: the requester's own Approve click, and a refused form alike."""
    with scene(sqlite_url) as s:
        message = s.request("update", "ONE", "rotated-one")
        assert s.bot.click(message, user=REQUESTER).status == 200
        s.bot.slack.wait_for_ephemeral(REQUESTER, mentioning("can't decide"))
        s.bot.drain()
        denied = s.bot.audit()[-1]
        assert (denied["event"], denied["outcome"]) == ("approval.denied", "self_approval")
        assert denied["target"] == "action" and denied["action_id"] == s.action_id
        assert denied["hook_id"] is None and denied["request_id"] == request_id_of(message)
        view = s.bot.open_form(text="update")  # ONE has a request open: refused in the form
        ack = s.bot.submit(view, name="ONE", value=VALUE, hook=s.option())
        assert ack.status == 200 and ids.BLOCK_SECRET_NAME in ack.payload()["errors"]
        s.bot.drain()
        refused = s.bot.audit()[-1]
        assert (refused["event"], refused["outcome"]) == ("request.refused", "request_open")
        assert refused["target"] == "action" and refused["action_id"] == s.action_id
        assert refused["hook_id"] is None
