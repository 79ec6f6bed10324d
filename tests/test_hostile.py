"""Hostile input: forged, replayed, foreign, unknown, tampered, oversized and injected requests."""

from __future__ import annotations

import copy
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import inspect

from bot.slack import ids
from standins.slack import Ack, build_state_values
from tests.conftest import pg_schema
from tests.harness.inprocess import (
    APPROVALS,
    APPROVER,
    GROUPIE,
    ORIGIN,
    OUTSIDER,
    REQUESTER,
    Bot,
    all_requests,
    request_id_of,
    running_bot,
    shown_texts,
)

PG_URL = os.environ.get("TEST_DATABASE_URL")
OTHER_TEAM = "T0OTHER"
GROUP_APPROVER = "U0GAPP"  # approves (and requests) through user groups
WRITES = ("POST", "PATCH", "DELETE")
LETTERS = "Use letters, digits, _ and -"
# Secret names people and attackers type, and the error each must get.
BAD_NAMES = {
    "rtl-override": ("API\u202eYEK", LETTERS),
    "zero-width": ("API\u200bKEY", LETTERS),
    "nul": ("API\x00KEY", LETTERS),
    "newline": ("API\nKEY", LETTERS),
    "5000 chars": ("K" * 5000, "At most 128"),
    "mention": ("<!channel>", LETTERS),
    "user mention": ("<@U0APP>", LETTERS),
    "mrkdwn link": ("<https://evil.example|click>", LETTERS),
    "mrkdwn formatting": ("*API*_KEY_", LETTERS),
}


@dataclass
class Arena:
    """A running bot with a pending request by REQUESTER and its approval message."""

    bot: Bot
    name: str
    message: dict[str, Any]
    request_id: str

    def decision_view(self, user: str = APPROVER, approve: bool = True) -> dict[str, Any]:
        """The decision modal Slack opened for ``user``'s click on Approve (or Reject)."""
        mark = self.bot.slack.mark()
        action = ids.ACTION_APPROVE if approve else ids.ACTION_REJECT
        assert self.bot.click(self.message, action, user).status == 200
        opened = self.bot.slack.wait_for("views.open", after=mark)
        view: dict[str, Any] = opened.response["view"]
        return view


def _common(kind: str, user: str, team: str = "T0TEAM") -> dict[str, Any]:
    """The fields every interactivity payload carries (see reference/slack.md)."""
    return {
        "type": kind,
        "team": {"id": team, "domain": "acme"},
        "user": {"id": user, "username": user.lower(), "team_id": team},
        "api_app_id": "A0APP",
        "token": "legacy-verification-token",
        "enterprise": None,
        "is_enterprise_install": False,
    }


def _submission(a: Arena, view: dict[str, Any], submitter: str, **overrides: Any) -> bytes:
    """The form body of a view submission, with any payload field overridden."""
    payload = _common("view_submission", submitter)
    payload.update(view=view, trigger_id=a.bot.slack.issue_trigger_id(submitter), **overrides)
    return urlencode({"payload": json.dumps(payload)}).encode()


def _filled(view: dict[str, Any]) -> dict[str, Any]:
    """A decision modal as submitted with an empty comment."""
    view = copy.deepcopy(view)
    view["state"] = {"values": {ids.BLOCK_COMMENT: {ids.BLOCK_COMMENT: {"value": None}}}}
    return view


def _approve_body(a: Arena, metadata: str | None = None) -> bytes:
    """An approver's submission of the decision modal (``metadata``: tampered with)."""
    view = _filled(a.decision_view())
    if metadata is not None:
        view["private_metadata"] = metadata
    return _submission(a, view, APPROVER)


def _submit(a: Arena, command: str = "add", **fields: Any) -> Ack:
    """Open the request form with ``/hook-secret {command}`` and submit it."""
    ack: Ack = a.bot.submit(a.bot.open_form(text=command), **fields)
    return ack


def _post(a: Arena, body: bytes, headers: dict[str, str] | None = None) -> Ack:
    """POST ``body`` to the bot, correctly signed unless ``headers`` are given."""
    driver = a.bot.driver
    return driver.post_raw(body, driver.signed_headers(body) if headers is None else headers)


# Signatures --------------------------------------------------------------------------


def forged_signature(a: Arena) -> Ack:
    body = _approve_body(a)
    return _post(
        a, body, a.bot.driver.signed_headers(body) | {"X-Slack-Signature": "v0=" + "0" * 64}
    )


def signed_with_another_secret(a: Arena) -> Ack:
    body, ts = _approve_body(a), int(time.time())
    signature = SignatureVerifier("not-the-signing-secret").generate_signature(
        timestamp=str(ts), body=body
    )
    headers = a.bot.driver.signed_headers(body, timestamp=ts)
    return _post(a, body, headers | {"X-Slack-Signature": str(signature)})


def stale_timestamp(a: Arena) -> Ack:
    body = _approve_body(a)
    return _post(a, body, a.bot.driver.signed_headers(body, timestamp=int(time.time()) - 301))


def future_timestamp(a: Arena) -> Ack:
    body = _approve_body(a)
    return _post(a, body, a.bot.driver.signed_headers(body, timestamp=int(time.time()) + 600))


def unsigned(a: Arena) -> Ack:
    return _post(a, _approve_body(a), {"Content-Type": "application/x-www-form-urlencoded"})


def body_swapped_after_signing(a: Arena) -> Ack:
    honest = urlencode(a.bot.driver.slash_command_fields(REQUESTER, "help")).encode()
    return _post(a, _approve_body(a), a.bot.driver.signed_headers(honest))


# Other workspaces ----------------------------------------------------------------------


def command_from_another_team(a: Arena) -> Ack:
    return a.bot.driver.slash_command(OUTSIDER, "add", channel_id=ORIGIN, team_id=OTHER_TEAM)


def approval_from_another_team(a: Arena) -> Ack:
    view = a.decision_view()
    return a.bot.driver.view_submission(
        APPROVER, view, {ids.BLOCK_COMMENT: None}, team_id=OTHER_TEAM
    )


def click_from_another_team(a: Arena) -> Ack:
    return a.bot.driver.block_action(
        APPROVER, ids.ACTION_APPROVE, message=a.message, channel_id=APPROVALS, team_id=OTHER_TEAM
    )


def guest_from_another_team(a: Arena) -> Ack:
    user = {"id": APPROVER, "username": "alex", "team_id": OTHER_TEAM}
    return _post(a, _submission(a, _filled(a.decision_view()), APPROVER, user=user))


def enterprise_install_of_another_org(a: Arena) -> Ack:
    body = _submission(
        a,
        _filled(a.decision_view()),
        APPROVER,
        team=None,
        user={"id": APPROVER, "username": "alex", "team_id": None},
        enterprise={"id": "E0OTHER", "name": "Other Org"},
        is_enterprise_install=True,
    )
    return _post(a, body)


# Unknown ids ---------------------------------------------------------------------------


def unknown_view_callback(a: Arena) -> Ack:
    view = _filled(a.decision_view())
    view["callback_id"] = "hook_secret_approve_all"
    return _post(a, _submission(a, view, APPROVER))


def unknown_action_id(a: Arena) -> Ack:
    message = copy.deepcopy(a.message)
    for block in message["blocks"]:
        for element in block.get("elements", []):
            if element.get("action_id") == ids.ACTION_APPROVE:
                element["action_id"] = "approve_everything"
    return a.bot.driver.block_action(
        APPROVER, "approve_everything", message=message, channel_id=APPROVALS
    )


def unknown_command(a: Arena) -> Ack:
    return a.bot.driver.slash_command(REQUESTER, "add", command="/hook-secrets-admin")


# Tampered references -------------------------------------------------------------------


def approval_by_a_requester_for_someone_elses_request(a: Arena) -> Ack:
    return a.bot.driver.view_submission(GROUPIE, a.decision_view(), {ids.BLOCK_COMMENT: None})


def approval_for_a_request_that_does_not_exist(a: Arena) -> Ack:
    return _post(a, _approve_body(a, metadata="hsr_00000000deadbeef"))


def approval_with_garbage_metadata(a: Arena) -> Ack:
    return _post(a, _approve_body(a, metadata="' OR 1=1; --" + "\u202e" * 10 + "x" * 3000))


def button_for_a_request_that_does_not_exist(a: Arena) -> Ack:
    return a.bot.driver.block_action(
        APPROVER,
        ids.ACTION_APPROVE,
        "hsr_00000000deadbeef",
        message=a.message,
        channel_id=APPROVALS,
    )


def request_form_with_a_hook_id_that_is_a_path(a: Arena) -> Ack:
    hook = {"selected_option": {"text": {"type": "plain_text", "text": "x"}, "value": "../users"}}
    return _submit(a, name="PATHLIKE", hook=hook, validate=False)


def request_form_with_an_oversized_hook_id(a: Arena) -> Ack:
    hook = {"selected_option": {"text": {"type": "plain_text", "text": "x"}, "value": "h" * 5000}}
    return _submit(a, name="BIGHOOK", hook=hook, validate=False)


def approval_comment_with_nul(a: Arena) -> Ack:
    return a.bot.driver.view_submission(
        APPROVER, a.decision_view(), {ids.BLOCK_COMMENT: "fine\x00"}, validate=False
    )


def request_form_with_a_hook_that_does_not_exist(a: Arena) -> Ack:
    hook = {"selected_option": {"text": {"type": "plain_text", "text": "x"}, "value": "01NOPE"}}
    return _submit(a, name="NOHOOK", hook=hook, validate=False)


# People who may not ---------------------------------------------------------------------


def outsider_submits_the_request_form(a: Arena) -> Ack:
    return _submit(a, user=OUTSIDER, name="SNEAKY")


def outsider_clicks_approve(a: Arena) -> Ack:
    ack: Ack = a.bot.click(a.message, user=OUTSIDER)
    return ack


def requester_submits_approval_of_their_own_request(a: Arena) -> Ack:
    return a.bot.driver.view_submission(REQUESTER, a.decision_view(), {ids.BLOCK_COMMENT: None})


def approver_clicks_approve_on_their_own_request(a: Arena) -> Ack:
    ack: Ack = a.bot.click(a.message, user=GROUP_APPROVER)
    return ack


def approver_submits_approval_of_their_own_request(a: Arena) -> Ack:
    view = a.decision_view()  # opened by another approver
    return a.bot.driver.view_submission(GROUP_APPROVER, view, {ids.BLOCK_COMMENT: None})


def approver_removed_from_group_before_submitting(a: Arena) -> Ack:
    view = a.decision_view(GROUP_APPROVER)
    a.bot.slack.set_group_members("S0APPS", [])
    return a.bot.driver.view_submission(GROUP_APPROVER, view, {ids.BLOCK_COMMENT: None})


# Oversized, control characters, injection in the request form -----------------------------


def _form_case(input_name: str, text: str) -> Callable[[Arena], Ack]:
    """Submit the request form with ``text`` in one input and fine values in the others."""

    def attack(a: Arena) -> Ack:
        values: dict[str, Any] = {"name": "FORM_CASE", "value": "fine-value", "reason": "fine"}
        values[input_name] = text
        return _submit(a, validate=False, **values)

    return attack


@dataclass(frozen=True)
class Case:
    """One hostile input, the answer it must get, and the audit events it must leave."""

    attack: Callable[[Arena], Ack]
    status: int = 200
    answer: str = ""
    audited: tuple[tuple[str, str], ...] = ()
    requester: str = REQUESTER  # who made the pending request the case attacks
    recorded: dict[str, str | None] = field(default_factory=dict)  # fields of the audit record


CASES: dict[str, Case] = {
    "forged signature": Case(forged_signature, 401),
    "signed with another secret": Case(signed_with_another_secret, 401),
    "stale timestamp": Case(stale_timestamp, 401),
    "future timestamp": Case(future_timestamp, 401),
    "unsigned": Case(unsigned, 401),
    "body swapped after signing": Case(body_swapped_after_signing, 401),
    "command from another team": Case(
        command_from_another_team,
        answer="another Slack workspace",
        audited=(("request.denied", "foreign_team"),),
    ),
    "approval from another team": Case(
        approval_from_another_team,
        answer="another Slack workspace",
        audited=(("approval.denied", "foreign_team"),),
    ),
    "click from another team": Case(
        click_from_another_team,
        answer="another Slack workspace",
        audited=(("approval.denied", "foreign_team"),),
    ),
    "guest from another team": Case(
        guest_from_another_team,
        answer="another Slack workspace",
        audited=(("approval.denied", "foreign_team"),),
        recorded={"actor": APPROVER, "team_id": OTHER_TEAM + ",T0TEAM"},
    ),
    "enterprise install of another org": Case(
        enterprise_install_of_another_org,
        answer="another Slack workspace",
        audited=(("approval.denied", "foreign_team"),),
        recorded={"actor": APPROVER, "team_id": "", "enterprise_id": "E0OTHER"},
    ),
    "unknown view callback": Case(unknown_view_callback, 404),
    "unknown action id": Case(unknown_action_id, 404),
    "unknown command": Case(unknown_command, 404),
    "approval by a requester for someone else's request": Case(
        approval_by_a_requester_for_someone_elses_request,
        answer="not (or no longer) an approver",
        audited=(("approval.denied", "not_an_approver"),),
    ),
    "approval for a request that does not exist": Case(
        approval_for_a_request_that_does_not_exist, answer="No such request"
    ),
    "approval with garbage metadata": Case(
        approval_with_garbage_metadata, answer="No such request"
    ),
    "button for a request that does not exist": Case(
        button_for_a_request_that_does_not_exist, answer="does not exist"
    ),
    "hook id that is a path": Case(
        request_form_with_a_hook_id_that_is_a_path,
        answer="Choose a hook",
        audited=(("request.refused", "invalid_input"),),
    ),
    "hook that does not exist": Case(
        request_form_with_a_hook_that_does_not_exist,
        answer="no longer exists",
        audited=(("request.refused", "unknown_hook"),),
    ),
    "outsider submits the request form": Case(
        outsider_submits_the_request_form,
        answer="not allowed",
        audited=(("request.denied", "not_a_requester"),),
    ),
    "outsider clicks approve": Case(
        outsider_clicks_approve,
        answer="not in HOOK_SECRET_APPROVERS",
        audited=(("approval.denied", "not_an_approver"),),
    ),
    "requester submits approval of their own request": Case(
        requester_submits_approval_of_their_own_request,
        answer="not (or no longer) an approver",
        audited=(("approval.denied", "not_an_approver"),),
    ),
    "approver clicks approve on their own request": Case(
        approver_clicks_approve_on_their_own_request,
        answer="you requested it",
        audited=(("approval.denied", "self_approval"),),
        requester=GROUP_APPROVER,
    ),
    "approver submits approval of their own request": Case(
        approver_submits_approval_of_their_own_request,
        answer="another approver has to decide",
        audited=(("approval.denied", "self_approval"),),
        requester=GROUP_APPROVER,
    ),
    "approver removed from group before submitting": Case(
        approver_removed_from_group_before_submitting,
        answer="not (or no longer) an approver",
        audited=(("approval.denied", "not_an_approver"),),
    ),
    **{
        f"secret name: {label}": Case(
            _form_case("name", text),
            answer=answer,
            audited=(("request.refused", "invalid_name"),),
            # A name that failed its checks could be anything (a pasted value): not kept.
            recorded={"secret_name": None},
        )
        for label, (text, answer) in BAD_NAMES.items()
    },
    "secret value: nul": Case(
        _form_case("value", "v\x00lue"),
        answer="NUL",
        audited=(("request.refused", "invalid_input"),),
    ),
    "secret value: 5000 chars": Case(
        _form_case("value", "v" * 5000),
        answer="At most 4096",
        audited=(("request.refused", "invalid_input"),),
    ),
    "secret value: only whitespace": Case(
        _form_case("value", " \t\n "),
        answer="can't be blank",
        audited=(("request.refused", "invalid_input"),),
    ),
    "reason: nul": Case(
        _form_case("reason", "because\x00"),
        answer="NUL",
        audited=(("request.refused", "invalid_input"),),
    ),
    "hook id: 5000 chars": Case(
        request_form_with_an_oversized_hook_id,
        answer="Choose a hook",
        audited=(("request.refused", "invalid_input"),),
        recorded={"hook_id": None},  # not a hook id: not kept
    ),
    "approval comment: nul": Case(
        approval_comment_with_nul,
        answer="NUL",
    ),
    "reason: 5000 chars": Case(
        _form_case("reason", "r" * 5000),
        answer="At most 1000",
        audited=(("request.refused", "invalid_input"),),
    ),
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def hostile_bot(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Bot]:
    """One bot per database for the whole table: each case checks what it changed against a
    snapshot."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('hostile') / 'bot.db'}"
        elif PG_URL:
            url = stack.enter_context(pg_schema(PG_URL))
        else:
            pytest.skip("TEST_DATABASE_URL is not set: PostgreSQL hostile input tests skipped")
        with running_bot(url) as bot:
            bot.slack.add_user(GROUP_APPROVER, "gina")
            # An approver who may also request, through both user groups.
            bot.slack.set_group_members("S0APPS", [GROUP_APPROVER])
            bot.slack.set_group_members("S0REQS", [GROUPIE, GROUP_APPROVER])
            yield bot


def _arena(bot: Bot, name: str, requester: str = REQUESTER) -> Arena:
    """A fresh pending request by ``requester`` for secret ``name``."""
    view = bot.open_form(requester)
    ack = bot.submit(view, name=name, value="pending-value", user=requester)
    assert ack.status == 200 and not ack.body, ack.body
    message = bot.slack.wait_for_message(
        APPROVALS,
        lambda m: (
            f"`{name}`" in m.get("text", "")
            and any(b.get("type") == "actions" for b in m.get("blocks", []))
        ),
    )
    bot.drain()
    return Arena(bot, name, message, request_id_of(message))


def _state(bot: Bot) -> tuple[Any, ...]:
    """Every request row, the number of Auth0 writes, and the hook's secret names."""
    rows = sorted(
        (
            tuple(getattr(r, column.key) for column in inspect(type(r)).column_attrs)
            for r in all_requests(bot.store)
        ),
        key=repr,
    )
    writes = [r for r in bot.auth0.requests if r.method in WRITES]
    return tuple(rows), len(writes), tuple(sorted(bot.auth0.secrets(bot.hook_id)))


def _shown_since(bot: Bot, ack: Ack, before: Counter[str]) -> str:
    """The ack and every text the bot showed anyone since ``before``."""
    return "\n".join([ack.text, *(Counter(shown_texts(bot.slack)) - before).elements()])


def _unexpected_auth0_paths(bot: Bot, since: int) -> list[str]:
    """Auth0 paths outside the hooks API and the token endpoint requested since ``since``."""
    return [
        r.path
        for r in bot.auth0.requests[since:]
        if ".." in r.path or not r.path.startswith(("/oauth/token", "/api/v2/hooks"))
    ]


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_hostile_input_gets_a_clear_answer_and_changes_nothing(
    hostile_bot: Bot, case: Case, request: pytest.FixtureRequest
) -> None:
    """Each hostile input is answered (or refused with 401), changes no request and no secret,
    and leaves exactly the audit events an authorization failure or refusal calls for."""
    bot = hostile_bot
    arena = _arena(bot, f"H_{request.node.callspec.indices['case']}", case.requester)
    before, audited_before = _state(bot), len(bot.audit())
    texts_before, auth0_before = Counter(shown_texts(bot.slack)), len(bot.auth0.requests)
    try:
        ack = case.attack(arena)
        bot.drain()
    finally:
        bot.slack.set_group_members("S0APPS", [GROUP_APPROVER])
    assert ack.status == case.status, ack.text
    if case.status == 200:
        shown = _shown_since(bot, ack, texts_before)
        assert ack.text or shown.strip(), "no answer at all"
        assert case.answer in shown, shown
    assert _state(bot) == before
    assert _unexpected_auth0_paths(bot, auth0_before) == []
    new = [(r["event"], r["outcome"]) for r in bot.audit()[audited_before:]]
    assert new == list(case.audited)
    for key, value in case.recorded.items():
        assert bot.audit()[-1][key] == value, key
    kept = bot.store.get(arena.request_id)
    assert kept is not None and kept.state == "pending"


# Replays: the same signed bytes sent twice take effect once -----------------------------


def _request_submission_body(a: Arena) -> bytes:
    view = a.bot.open_form()
    values = {
        ids.BLOCK_HOOK: a.bot.hook_option(),
        ids.BLOCK_SECRET_NAME: f"{a.name}_AGAIN",
        ids.BLOCK_SECRET_VALUE: "replayed-value",
        ids.BLOCK_REASON: "replayed",
    }
    submitted = dict(view, state={"values": build_state_values(view, values)})
    return _submission(a, submitted, REQUESTER)


def _reject_body(a: Arena) -> bytes:
    return _submission(a, _filled(a.decision_view(approve=False)), APPROVER)


REPLAYS: dict[str, tuple[Callable[[Arena], bytes], str, int]] = {
    "request submission": (_request_submission_body, "request.submitted", 0),
    "approval submission": (_approve_body, "request.approved", 1),
    "rejection submission": (_reject_body, "request.rejected", 0),
}


@pytest.mark.parametrize("kind", list(REPLAYS))
def test_replayed_submission_takes_effect_once(hostile_bot: Bot, kind: str) -> None:
    """The same signed submission sent twice within the signature's five minutes records or
    decides once; the replay is answered with what already happened."""
    bot = hostile_bot
    arena = _arena(bot, f"R_{list(REPLAYS).index(kind)}")
    build, event, auth0_writes = REPLAYS[kind]
    body = build(arena)
    headers = bot.driver.signed_headers(body)
    rows, writes = len(all_requests(bot.store)), _state(bot)[1]
    audited_before = len(bot.audit())
    first = bot.driver.post_raw(body, headers)
    bot.drain()
    replay = bot.driver.post_raw(body, headers)
    bot.drain()
    assert first.status == 200 and not first.body, first.text
    assert replay.status == 200 and replay.json()["response_action"] in ("errors", "update")
    assert any(w in replay.text for w in ("still open", "Already decided")), replay.text
    assert [r["event"] for r in bot.audit()[audited_before:]].count(event) == 1
    assert _state(bot)[1] == writes + auth0_writes
    assert len(all_requests(bot.store)) == rows + (kind == "request submission")


# Injection: every text people type is shown escaped, or not at all ------------------------

INJECT = "<!channel> <!here> <@U0EVIL> <!subteam^S0EVIL> <https://evil.example|log in> &amp;"
RAW = ("<!channel>", "<!here>", "<@U0EVIL>", "<!subteam^S0EVIL>", "<https://evil.example")
# Command text can't carry ':' (it would be refused as a value), so no link there.
INJECT_WORD = "<!channel><@U0EVIL><!subteam^S0EVIL>"


def _reason(a: Arena) -> Ack:
    return _submit(a, name=f"{a.name}_R", reason=INJECT)


def _rotation_reason(a: Arena) -> Ack:
    return _submit(a, "update", name="EXISTING", reason=INJECT)


def _approval_comment(a: Arena) -> Ack:
    return a.bot.driver.view_submission(APPROVER, a.decision_view(), {ids.BLOCK_COMMENT: INJECT})


def _rejection_comment(a: Arena) -> Ack:
    view = a.decision_view(approve=False)
    return a.bot.driver.view_submission(APPROVER, view, {ids.BLOCK_COMMENT: INJECT})


def _hook_argument(a: Arena) -> Ack:
    return a.bot.driver.slash_command(REQUESTER, f"add {INJECT_WORD} NAME", channel_id=ORIGIN)


def _name_argument(a: Arena) -> Ack:
    text = f"add {a.bot.hook_id} {INJECT_WORD}"
    return a.bot.driver.slash_command(REQUESTER, text, channel_id=ORIGIN)


def _list_argument(a: Arena) -> Ack:
    return a.bot.driver.slash_command(REQUESTER, f"list {INJECT_WORD}", channel_id=ORIGIN)


def _unknown_subcommand(a: Arena) -> Ack:
    return a.bot.driver.slash_command(REQUESTER, INJECT_WORD, channel_id=ORIGIN)


def _secret_name(a: Arena) -> Ack:
    return _submit(a, name=INJECT, validate=False)


INJECTIONS: dict[str, tuple[Callable[[Arena], Ack], bool]] = {
    # field: (how it is typed, whether the bot shows it back, escaped)
    "reason": (_reason, True),
    "rotation reason": (_rotation_reason, True),
    "approval comment": (_approval_comment, False),
    "rejection comment": (_rejection_comment, True),
    "hook argument": (_hook_argument, True),
    "name argument": (_name_argument, False),
    "list argument": (_list_argument, True),
    "unknown subcommand": (_unknown_subcommand, False),
    "secret name": (_secret_name, False),
}


@pytest.mark.parametrize("where", list(INJECTIONS))
def test_mrkdwn_and_mentions_in_every_text_field_are_neutralised(
    hostile_bot: Bot, where: str
) -> None:
    """Mentions, broadcasts and links typed into any field never reach Slack as mrkdwn: they
    are shown escaped, or not echoed at all."""
    bot = hostile_bot
    arena = _arena(bot, f"I_{list(INJECTIONS).index(where)}")
    typed, echoed = INJECTIONS[where]
    before = Counter(shown_texts(bot.slack))
    ack = typed(arena)
    assert ack.status == 200
    bot.drain()
    shown = [ack.text, *(Counter(shown_texts(bot.slack)) - before).elements()]
    raw = [text for text in shown if any(token in text for token in RAW)]
    assert raw == []
    assert any("&lt;!channel&gt;" in text for text in shown) is echoed, shown
