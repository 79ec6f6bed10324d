"""Slack listeners, one module per surface; each exposes ``register(app)``.

Listeners are module-level functions: Bolt hands them ``services`` from the request
context (see ``bot.slack.app``), so each can be called alone in a test."""

from slack_bolt import App

from bot.slack.listeners import actions, commands, listing, options, picks, views


def register_all(app: App) -> None:
    """Attach every listener to ``app``."""
    for module in (commands, views, actions, options, listing, picks):
        module.register(app)
