"""Messages a state change promises to send, queued in the database and delivered until
Slack takes each one."""
