"""End-to-end harnesses: the app served in this process (inprocess), or the real ``hook-secret-bot``
as a subprocess (process), both between the Slack stand-in and the Auth0 sandbox (people)."""
