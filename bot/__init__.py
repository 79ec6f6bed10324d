"""hook-secret-bot: change Auth0 Hook secrets from Slack, safely."""

__version__ = "0.1.0"
