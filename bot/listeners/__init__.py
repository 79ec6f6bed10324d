"""Slack listeners, one module per surface; each exposes ``register(app, services)``."""

from slack_bolt import App

from bot.flow import Services
from bot.listeners import actions, commands, listing, options, views


def register_all(app: App, services: Services) -> None:
    """Attach every listener to ``app``."""
    for module in (commands, views, actions, options, listing):
        module.register(app, services)
