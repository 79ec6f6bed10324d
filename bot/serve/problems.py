"""Why the bot can't reach Slack or create its SQLite file: said alike by ``run`` and ``check``."""

from __future__ import annotations

import os
from pathlib import Path

from bot.settings import Settings, SlackSettings

DEFAULT_SLACK_API_URL = str(Settings.model_fields["slack_api_url"].default)
NETWORK = "that this machine may reach it (DNS, firewall, HTTPS_PROXY)"


def slack_unreachable(
    settings: SlackSettings, error: BaseException, *, prefixed: bool = False
) -> str:
    """What failed and what to check; SLACK_API_URL is named only when it was changed (then
    first, when ``prefixed``), since a person who never set it should look at the network."""
    why = getattr(error, "reason", None) or error
    where = f"Slack can't be reached at {settings.slack_api_url} ({why})"
    if settings.slack_api_url == DEFAULT_SLACK_API_URL:
        return f"{where}: check {NETWORK}"
    fix = f"check SLACK_API_URL (leave it unset for {DEFAULT_SLACK_API_URL}) and {NETWORK}"
    return ("SLACK_API_URL: " if prefixed else "") + f"{where}: {fix}"


def sqlite_file_problem(path: Path) -> str | None:
    """Why ``run`` could not create the SQLite file ``path`` (not there yet), or None.

    A missing directory is never created: it is more often a typo in DATABASE_URL (or an
    unmounted volume) than a wish, and a new empty database there would read as an empty trail.
    """
    if not path.parent.is_dir():
        return f"directory {path.parent} does not exist: create it or fix DATABASE_URL"
    if not os.access(path.parent, os.W_OK):
        return (
            f"directory {path.parent} is not writable: `run` could not create {path.name} there; "
            "fix its permissions or DATABASE_URL"
        )
    return None
