"""Local stand-ins for Slack and Auth0 over real HTTP, for the tests and `hook-secret-bot demo`."""
