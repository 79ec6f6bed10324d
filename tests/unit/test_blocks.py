"""Every Block Kit builder as a plain function: what it shows, and that Slack would take it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.approvals.states import Kind, State
from bot.db.models import SecretRequest
from bot.limits import MAX_SECRETS_PER_HOOK, Provenance
from bot.slack import ids, text
from bot.slack.blocks import approval_message as approval
from bot.slack.blocks import confirmation, listing, parts, pickers, request_form
from bot.targets import Described, TargetKind, TargetRef
from standins.slack import validate_message_blocks, validate_options_response, validate_view
from tests.unit.factories import secret_request


def hook(hook_id: str, name: str, trigger_id: str, enabled: bool) -> Described:
    return Described(TargetRef(TargetKind.HOOK, hook_id), name, trigger_id, enabled)


HOOK = hook("01-hook", "Hook <b>&", "credentials-exchange", enabled=True)


def request(kind: Kind = Kind.ADD, **changes: Any) -> SecretRequest:
    return secret_request(kind, target_id=HOOK.id, target_name=HOOK.name, **changes)


def texts(body: Any) -> str:
    """Every string in a payload, for asserting what users would read."""
    return json.dumps(body)


def input_ids(view: dict[str, Any]) -> list[str]:
    return [b["block_id"] for b in view["blocks"] if b["type"] == "input"]


def test_esc_neutralises_mrkdwn_control_characters() -> None:
    """&, < and > are escaped, ampersand first so nothing is escaped twice."""
    assert text.esc("<@U1> & <!here>") == "&lt;@U1&gt; &amp; &lt;!here&gt;"


def test_hook_label_fits_slack_and_marks_disabled_hooks() -> None:
    """Name and trigger, [disabled] when off, cut to 75 characters with an ellipsis."""
    assert pickers.hook_label(HOOK) == "Hook <b>& (credentials-exchange)"
    off = hook("h", "Quiet", "post-login", enabled=False)
    assert pickers.hook_label(off) == "Quiet (post-login) [disabled]"
    long = pickers.hook_label(hook("h", "N" * 100, "t", True))
    assert len(long) == pickers.LABEL_MAX and long.endswith("…")
    assert pickers.hook_option(HOOK).to_dict()["value"] == HOOK.id


@pytest.mark.parametrize("kind", list(Kind))
@pytest.mark.parametrize("require_reason", [True, False])
def test_request_modal_has_the_contract_blocks(kind: Kind, require_reason: bool) -> None:
    """hook, secret_name, secret_value (not for remove) and reason, each block id = action id."""
    view = request_form.request_modal(
        kind, private_metadata='{"channel":"C0"}', require_reason=require_reason
    )
    assert validate_view(view) == []
    assert view["callback_id"] == request_form.CALLBACK[kind]
    expected = [ids.BLOCK_HOOK, ids.BLOCK_SECRET_NAME, ids.BLOCK_SECRET_VALUE, ids.BLOCK_REASON]
    if kind is Kind.REMOVE:
        expected.remove(ids.BLOCK_SECRET_VALUE)
    assert input_ids(view) == expected
    for block in view["blocks"]:
        assert block["element"]["action_id"] == block["block_id"]
    reason = next(b for b in view["blocks"] if b["block_id"] == ids.BLOCK_REASON)
    assert reason.get("optional", False) is not require_reason
    assert view["submit"]["text"] == (
        "Request" if require_reason else parts.VERB[kind].capitalize()
    )


def test_request_modal_copies_are_their_own_and_carry_their_metadata() -> None:
    """The slash command's form is built once per shape: each call gets a fresh copy with
    its own metadata and the secret name typed in the command; changing one changes none."""
    first = request_form.request_modal(
        Kind.ADD, private_metadata='{"channel":"C1"}', require_reason=True
    )
    first["blocks"].clear()
    second = request_form.request_modal(
        Kind.ADD, private_metadata='{"channel":"C2"}', require_reason=True, secret_name="API_KEY"
    )
    third = request_form.request_modal(
        Kind.ADD, private_metadata='{"channel":"C3"}', require_reason=True
    )
    assert validate_view(second) == [] and validate_view(third) == []
    assert (second["private_metadata"], third["private_metadata"]) == (
        '{"channel":"C2"}',
        '{"channel":"C3"}',
    )
    assert input_ids(third) == input_ids(second) != []
    name = next(b for b in second["blocks"] if b["block_id"] == ids.BLOCK_SECRET_NAME)
    assert name["element"]["initial_value"] == "API_KEY"
    assert (
        "initial_value"
        not in next(b for b in third["blocks"] if b["block_id"] == ids.BLOCK_SECRET_NAME)["element"]
    )


def test_request_modal_prefills_hook_name_and_notice() -> None:
    """A named hook and secret pre-fill the form; a notice comes first as a context line."""
    view = request_form.request_modal(
        Kind.UPDATE,
        private_metadata="{}",
        require_reason=True,
        hook=HOOK,
        secret_name="API_KEY",
        notice="heads up",
    )
    assert validate_view(view) == []
    assert view["blocks"][0]["type"] == "context"
    hook = next(b for b in view["blocks"] if b.get("block_id") == ids.BLOCK_HOOK)
    assert hook["element"]["type"] == "external_select"
    assert hook["element"]["initial_option"]["value"] == HOOK.id
    name = next(b for b in view["blocks"] if b.get("block_id") == ids.BLOCK_SECRET_NAME)
    assert name["element"]["initial_value"] == "API_KEY"


def test_approval_message_has_buttons_carrying_the_request_id() -> None:
    """Approve and Reject carry the request id; user text is escaped; the mention leads."""
    text, body = approval.approval_message(request(), "<!subteam^S0APP>")
    assert validate_message_blocks(body) == []
    assert text.startswith("<!subteam^S0APP> <@U0REQ> asks to add secret `API_KEY`")
    [actions] = [b for b in body if b["type"] == "actions"]
    buttons = {e["action_id"]: e["value"] for e in actions["elements"]}
    assert buttons == {
        ids.ACTION_APPROVE: "hsr_0123456789abcdef",
        ids.ACTION_REJECT: "hsr_0123456789abcdef",
    }
    shown = texts(body)
    assert "Hook &lt;b&gt;&amp;" in shown and "vendor &lt;rotated&gt;" in shown
    assert "fp0123" in shown and "<b>" not in shown


def test_decided_message_has_no_buttons() -> None:
    """Once decided, the message keeps the summary, adds the outcome and drops the buttons."""
    text, body = approval.decided_message(request(), "Rejected by <@U0APP>.")
    assert validate_message_blocks(body) == []
    assert text == "Request `hsr_0123456789abcdef`: Rejected by <@U0APP>."
    # The facts, the reason as typed (a plain_text block of its own), the outcome.
    assert [b["type"] for b in body] == ["section", "section", "context"]
    assert body[1]["text"]["type"] == "plain_text"


@pytest.mark.parametrize(
    ("decided_by", "who"),
    [("U0APP", "approved by <@U0APP>"), ("U0REQ", "self-confirmed (no approval required)")],
)
def test_confirmation_names_people_never_the_value(decided_by: str, who: str) -> None:
    """The redacted confirmation names hook, secret, requester and approver."""
    text, body = confirmation.confirmation(request(Kind.UPDATE, decided_by=decided_by))
    assert validate_message_blocks(body) == []
    assert text == f"Secret `API_KEY` rotated on hook Hook &lt;b&gt;&amp; by <@U0REQ>, {who}."
    assert "the value is never shown" in texts(body)


FORGERIES = {
    "newline and mrkdwn": ("fine\n*Secret:* `OTHER`", "fine ⏎ *Secret:* `OTHER`"),
    "bidi override": ("abc\u202edcba", "abc[U+202E]dcba"),
    "zero width": ("a\u200bb", "a[U+200B]b"),
    "mention": ("<!channel>", "&lt;!channel&gt;"),
}


@pytest.mark.parametrize(("typed", "safe"), FORGERIES.values(), ids=FORGERIES.keys())
def test_user_text_cannot_forge_lines_or_structure(typed: str, safe: str) -> None:
    """A reason or comment reaches the approval and decided messages and the decision modal as
    one plain_text line, invisible characters shown; never as mrkdwn the bot's lines use."""
    forged = request(reason=typed, decision_comment=typed)
    bodies = [
        approval.approval_message(forged, None)[1],
        approval.decided_message(forged, "Rejected.", typed)[1],
        approval.decision_modal(forged, approve=True)["blocks"],
    ]
    for body in bodies:
        typed_blocks = [b for b in body if b.get("text", {}).get("type") == "plain_text"]
        assert {b["text"]["text"] for b in typed_blocks} <= {f"Reason: {safe}", f"Comment: {safe}"}
        assert typed_blocks and all("\n" not in b["text"]["text"] for b in typed_blocks)
        rest = json.dumps([b for b in body if b not in typed_blocks], ensure_ascii=False)
        assert "OTHER" not in rest and typed not in rest and "[U+" not in rest


@pytest.mark.parametrize("approve", [True, False])
def test_decision_modal_carries_the_request_id(approve: bool) -> None:
    """Approve/Reject modal: its callback id, the id in private_metadata, an optional comment."""
    view = approval.decision_modal(request(), approve)
    assert validate_view(view) == []
    assert view["callback_id"] == (ids.CALLBACK_APPROVE if approve else ids.CALLBACK_REJECT)
    assert view["private_metadata"] == "hsr_0123456789abcdef"
    assert input_ids(view) == [ids.BLOCK_COMMENT]
    assert view["blocks"][-1]["optional"] is True


def test_info_modal_cuts_its_title_to_slacks_limit() -> None:
    """An informational modal has no submit button and a title of at most 24 characters."""
    view = parts.info_modal("A title far longer than Slack allows", "said")
    assert validate_view(view) == []
    assert len(view["title"]["text"]) == 24 and "submit" not in view


def test_hook_picker_offers_at_most_100_hooks_under_the_list_id() -> None:
    """The list command's picker is a static select with id ids.LIST_PICKER."""
    hooks = [hook(f"h{i}", f"Hook {i}", "t", True) for i in range(120)]
    body = listing.hook_picker(hooks)
    assert validate_message_blocks(body) == []
    accessory = body[0]["accessory"]
    assert accessory["action_id"] == ids.LIST_PICKER
    assert len(accessory["options"]) == pickers.MAX_OPTIONS


def test_unavailable_option_is_not_a_hook_id() -> None:
    """When Auth0 can't list hooks the one option says why and can't pass as an id."""
    option = pickers.unavailable_option("auth0_unavailable" * 10).to_dict()
    assert validate_options_response({"options": [option]}) == []
    assert option["value"] == "!unavailable"
    assert len(option["text"]["text"]) <= pickers.LABEL_MAX


def test_secret_list_shows_provenance_sorted_and_never_values() -> None:
    """One line per name, sorted: who set it through the bot, or that it was set outside."""
    origin = {
        "B_KEY": Provenance(True, "U0REQ", "U0APP", "2026-01-01T00:00:00Z"),
        "A_KEY": Provenance(False, "U0REQ", "U0REQ", "2026-01-02T00:00:00Z"),
    }
    text = listing.secret_list(HOOK, ["C_KEY", "B_KEY", "A_KEY"], origin)
    assert text.splitlines() == [
        f"*Hook &lt;b&gt;&amp;* (`01-hook`): 3 of {MAX_SECRETS_PER_HOOK} secrets",
        "• `A_KEY`: rotated by <@U0REQ> at 2026-01-02T00:00:00Z",
        "• `B_KEY`: added by <@U0REQ>, approved by <@U0APP> at 2026-01-01T00:00:00Z",
        "• `C_KEY`: set outside the bot",
    ]
    assert listing.secret_list(HOOK, [], {}).endswith("_No secrets._")


@pytest.mark.parametrize(
    ("state", "said"),
    [
        (State.APPROVED, "already approved by <@U0APP> and being applied"),
        (State.APPLIED, "already approved by <@U0APP> and applied"),
        (State.FAILED, "already approved by <@U0APP>; applying it failed (conflict)"),
        (State.REJECTED, "already rejected by <@U0APP>"),
        (State.EXPIRED, "expired before anyone decided"),
        (State.PENDING, "still pending"),
    ],
)
def test_describe_state_for_whoever_lost_the_race(state: State, said: str) -> None:
    """Each state reads as a short account naming the decider."""
    subject = request(state=state, decided_by="U0APP", failure_reason="conflict")
    assert approval.describe_state(subject) == said


def test_usage_names_every_subcommand() -> None:
    """Usage lists add, update, remove, list and help."""
    for sub in ("add", "update", "remove", "list", "help"):
        assert f"`{sub}" in listing.USAGE


@pytest.mark.parametrize("reason", ["<" * 1000, "\u200b" * 1000, "x" * 5000])
def test_a_stored_reason_slack_could_not_show_whole_is_cut_and_marked(reason: str) -> None:
    """The forms refuse such a reason; one stored anyway (an older bot's) still gives an
    approval post and a decided message Slack takes: cut within 3,000 characters, marked."""
    for _, body in (
        approval.approval_message(request(reason=reason), None),
        approval.decided_message(request(reason=reason), "Expired", comment=reason),
    ):
        typed = [b["text"]["text"] for b in body if b["type"] == "section"][1:]
        assert typed and all(len(t) <= 3000 and t.endswith("…") for t in typed)
