"""Alembic migrations of the bot's schema, applied on start."""
