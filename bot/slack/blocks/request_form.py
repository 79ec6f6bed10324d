"""The request modal: the form a slash command opens to add, rotate or remove a secret."""

from __future__ import annotations

import functools
import json
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ExternalDataSelectElement,
    InputBlock,
    PlainTextInputElement,
)
from slack_sdk.models.views import View

from bot.approvals.states import Kind
from bot.limits import NAME_MAX, REASON_MAX
from bot.slack import ids
from bot.slack.blocks.parts import VERB, note
from bot.slack.blocks.pickers import hook_option
from bot.targets import Described

# Slack caps plain_text_input.max_length at 3000, below Auth0's sensible 4096.
INPUT_MAX = 3000
TITLE = {
    Kind.ADD: "Add a hook secret",
    Kind.UPDATE: "Rotate a hook secret",
    Kind.REMOVE: "Remove a hook secret",
}
CALLBACK = {
    Kind.ADD: ids.CALLBACK_ADD,
    Kind.UPDATE: ids.CALLBACK_UPDATE,
    Kind.REMOVE: ids.CALLBACK_REMOVE,
}


def request_modal(
    kind: Kind,
    *,
    private_metadata: str,
    require_reason: bool,
    hook: Described | None = None,
    secret_name: str | None = None,
    notice: str | None = None,
) -> dict[str, Any]:
    """The request form: hook, secret name, value (not for remove) and reason."""
    if secret_name is not None and len(secret_name) > NAME_MAX:
        secret_name = None  # never valid, and past the field's max_length Slack would refuse
    if hook is None and notice is None:
        # What a slash command opens differs only in its metadata: built with the models
        # (which check Slack's limits) once per shape, each copy a fresh dict.
        view: dict[str, Any] = json.loads(_blank_form(kind, require_reason, secret_name))
        view["private_metadata"] = private_metadata
        return view
    return _request_view(kind, private_metadata, require_reason, hook, secret_name, notice)


@functools.lru_cache(maxsize=64)
def _blank_form(kind: Kind, require_reason: bool, secret_name: str | None) -> str:
    return json.dumps(_request_view(kind, "", require_reason, None, secret_name, None))


def _request_view(
    kind: Kind,
    private_metadata: str,
    require_reason: bool,
    hook: Described | None,
    secret_name: str | None,
    notice: str | None,
) -> dict[str, Any]:
    blocks: list[Block] = [note(notice)] if notice else []
    blocks += _request_inputs(kind, require_reason, hook, secret_name)
    submit = "Request" if require_reason else VERB[kind].capitalize()
    view = View(
        type="modal",
        callback_id=CALLBACK[kind],
        title=TITLE[kind],
        submit=submit,
        close="Cancel",
        private_metadata=private_metadata,
        blocks=blocks,
        # Cancel tells the bot (view_closed), which stops keeping the target's names fresh.
        notify_on_close=True,
    )
    return view.to_dict()


def _request_inputs(
    kind: Kind, require_reason: bool, hook: Described | None, secret_name: str | None
) -> list[Block]:
    """The request form's input blocks, each block id equal to its element's action id."""
    value = InputBlock(
        block_id=ids.BLOCK_SECRET_VALUE,
        label="Secret value",
        hint="Sent to Auth0 only; never shown in Slack, logs or the database in clear.",
        element=PlainTextInputElement(action_id=ids.BLOCK_SECRET_VALUE, max_length=INPUT_MAX),
    )
    return [
        InputBlock(
            block_id=ids.BLOCK_HOOK,
            label="Hook or action",
            # A pick is sent at once (block_actions), so the target's names are read before submit.
            dispatch_action=True,
            element=ExternalDataSelectElement(
                action_id=ids.BLOCK_HOOK,
                placeholder="Search actions and hooks by name",
                min_query_length=0,
                initial_option=hook_option(hook) if hook else None,
            ),
        ),
        InputBlock(
            block_id=ids.BLOCK_SECRET_NAME,
            label="Secret name",
            hint=f"Letters, digits, _ and -, starting with a letter or _ (at most {NAME_MAX}).",
            element=PlainTextInputElement(
                action_id=ids.BLOCK_SECRET_NAME, initial_value=secret_name, max_length=NAME_MAX
            ),
        ),
        *([value] if kind is not Kind.REMOVE else []),
        InputBlock(
            block_id=ids.BLOCK_REASON,
            label="Reason",
            optional=not require_reason,
            element=PlainTextInputElement(
                action_id=ids.BLOCK_REASON, multiline=True, max_length=REASON_MAX
            ),
        ),
    ]
