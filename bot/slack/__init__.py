"""Everything Slack: the Bolt app, listeners, Block Kit builders, user text, request
bodies, and the Web API client."""
