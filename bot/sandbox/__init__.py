"""Local stand-ins for Slack and Auth0, used by the tests and by ``hook-secret-bot demo``."""
