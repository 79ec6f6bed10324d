"""Block Kit builders, pure functions from domain data to Slack views, one module per surface.

- ``request_form``: the request modal a slash command opens;
- ``approval_message``: the approval request, its updates once decided, the decision modal;
- ``confirmation``: the redacted confirmation once applied, and what a failed apply left;
- ``listing``: what ``list`` and ``help`` show;
- ``pickers``: hooks and actions as options;
- ``parts``: what the surfaces share.

Direct messages and notifications are in ``bot.outbox.notify``; ephemeral answers in
``bot.slack.answers``. The listeners call the builders through the names below.
"""

from bot.slack.blocks.approval_message import decision_modal, describe_state
from bot.slack.blocks.listing import USAGE, hook_picker, secret_list
from bot.slack.blocks.pickers import target_options, unavailable_option
from bot.slack.blocks.request_form import request_modal
from bot.slack.text import esc

__all__ = [
    "USAGE",
    "decision_modal",
    "describe_state",
    "esc",
    "hook_picker",
    "request_modal",
    "secret_list",
    "target_options",
    "unavailable_option",
]
