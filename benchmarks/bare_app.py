"""A bare Bolt app that only acks, on the bot's server stack (gunicorn, one gthread worker).

``python -m benchmarks.bare_app PORT SLACK_API_URL SIGNING_SECRET default|request-path``:
``default`` is Bolt's default mode (the listener runs on Bolt's pool, the request thread polls
for ``ack()`` every 10 ms); ``request-path`` acks in the request path
(``process_before_response=True``), as the bot does.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

from slack_bolt import Ack, App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient

from bot.logs import configure_logging
from bot.serve.server import WSGIServer
from bot.serve.wsgi import WSGIApp
from tests.harness.process import BOT_TOKEN as TOKEN  # the stand-in's (fake) bot token


class BareServer(WSGIServer):
    """gunicorn serving an ack-only app built in the worker."""

    def __init__(self, port: int, api_url: str, signing_secret: str, mode: str) -> None:
        self.api_url = api_url
        self.signing_secret = signing_secret
        self.mode = mode
        super().__init__(port, "WARNING")

    def load(self) -> WSGIApp:
        app = App(
            client=WebClient(token=TOKEN, base_url=self.api_url),
            signing_secret=self.signing_secret,
            token_verification_enabled=False,
            process_before_response=self.mode == "request-path",
            logger=logging.getLogger("slack_bolt"),
        )

        @app.command(re.compile(".*"))
        def command(ack: Ack) -> None:
            ack()

        @app.view(re.compile(".*"))
        def submission(ack: Ack) -> None:
            ack()

        handler = SlackRequestHandler(app, path="/slack/events")

        def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
            return handler(environ, start_response)

        return wsgi


def main() -> None:
    port, api_url, secret, mode = sys.argv[1:5]
    configure_logging("WARNING", "json")
    BareServer(int(port), api_url, secret, mode).run()


if __name__ == "__main__":
    main()
