"""Slack identifiers of the public contract: callback, block and action ids in one place."""

from typing import Final

COMMAND: Final = "/hook-secret"

# View callback ids (CONTRACT §4).
CALLBACK_ADD: Final = "hook_secret_add"
CALLBACK_UPDATE: Final = "hook_secret_update"
CALLBACK_REMOVE: Final = "hook_secret_remove"
CALLBACK_APPROVE: Final = "hook_secret_approve"
CALLBACK_REJECT: Final = "hook_secret_reject"
REQUEST_CALLBACKS: Final = (CALLBACK_ADD, CALLBACK_UPDATE, CALLBACK_REMOVE)

# Input blocks: each block_id equals its element's action_id.
BLOCK_HOOK: Final = "hook"
BLOCK_SECRET_NAME: Final = "secret_name"  # noqa: S105 - a block id, not a secret
BLOCK_SECRET_VALUE: Final = "secret_value"  # noqa: S105 - a block id, not a secret
BLOCK_REASON: Final = "reason"
BLOCK_COMMENT: Final = "comment"

# Buttons on the approval request message, and the block holding them.
ACTION_APPROVE: Final = "approve_request"
ACTION_REJECT: Final = "reject_request"
BLOCK_DECISION: Final = "decision"

# The list command's hook picker.
LIST_PICKER: Final = "list_hook"
# The one option offered when Auth0 can't list hooks: not a hook id, so choosing it is refused.
OPTION_UNAVAILABLE: Final = "!unavailable"
