"""The store every part of the bot is given: the database with its request and outbox queries."""

from __future__ import annotations

from bot.db.queue import OutboxQueue
from bot.db.requests import RequestQueries


class Store(RequestQueries, OutboxQueue):
    """The database (``Database``: migrate, health, ``transaction``), reads of requests
    (``RequestQueries``) and the outbox queue (``OutboxQueue``); writes go through a ``Tx``."""
