"""A local stand-in for Slack: its Web API and response URLs over HTTP, and a driver that sends
signed slash commands and interactions to the bot the way Slack does.

``SlackStandIn`` (``webapi``, over the ``workspace`` it keeps) is what the bot talks to
(``WebClient(base_url=standin.api_url)``): users, channels, user groups, the messages and modals
the bot produced, and every call it received (``records``). ``SlackDriver`` (``driver``) is what
talks to the bot: it plays Slack's side of ``POST /slack/events`` or of Socket Mode
(``socket_mode``) for a given user. ``blockkit`` enforces Slack's Block Kit limits with Slack's
error shapes. Behaviour follows the verified facts in the project's Slack reference: trigger ids
die after 3 s and work once, response URLs work 5 times in 30 minutes.
"""

from standins.slack.blockkit import (
    validate_message_blocks,
    validate_options_response,
    validate_view,
)
from standins.slack.driver import SlackDriver, build_state_values
from standins.slack.records import Ack, ApiCall, ResponsePost
from standins.slack.webapi import SlackStandIn

__all__ = [
    "Ack",
    "ApiCall",
    "ResponsePost",
    "SlackDriver",
    "SlackStandIn",
    "build_state_values",
    "validate_message_blocks",
    "validate_options_response",
    "validate_view",
]
