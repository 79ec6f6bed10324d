"""hook-secret-bot: change Auth0 Action and Hook secrets from Slack, with approvals."""

__version__ = "0.1.0"
