"""Options loads for the hook picker, answered from the cached hook list."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App

from bot import blocks, ids
from bot.auth0.errors import Auth0Error
from bot.flow import Services

# Slack shows at most 100 options; options loads must answer inside 3 s.
MAX_OPTIONS = 100
OPTIONS_DEADLINE = 2.0


def register(app: App, services: Services) -> None:
    """Attach the hook picker's options listener."""

    @app.options(ids.BLOCK_HOOK)
    def on_hook_options(ack: Ack, payload: dict[str, Any]) -> None:
        try:
            hooks = services.catalog.search(payload.get("value") or "", OPTIONS_DEADLINE)
        except Auth0Error as error:
            ack(
                options=[
                    {
                        "text": {"type": "plain_text", "text": f"Auth0: {error.reason}"[:75]},
                        # Not a hook id: choosing it asks for a hook again.
                        "value": "!unavailable",
                    }
                ]
            )
            return
        ack(options=[blocks.hook_option(h).to_dict() for h in hooks[:MAX_OPTIONS]])
