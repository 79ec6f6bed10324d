"""Logging: one JSON shape for structlog and stdlib records, with secrets redacted."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from bot.logs import SECRETS, configure_logging, get_logger


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("DEBUG", "json", stream)
    yield stream
    structlog.contextvars.clear_contextvars()


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_stdlib_and_structlog_lines_share_one_json_shape(captured: io.StringIO) -> None:
    """A Bolt-style stdlib record and a structlog record carry the same keys."""
    structlog.contextvars.bind_contextvars(slack_user="U1")
    logging.getLogger("slack_bolt.App").info("hello %s", "bolt")
    get_logger("bot.test").info("hello structlog")
    first, second = _lines(captured)
    assert first["event"] == "hello bolt"
    assert set(first) == set(second)
    assert {"timestamp", "level", "logger", "slack_user"} <= set(first)
    assert str(first["timestamp"]).endswith("Z")


def test_registered_value_is_replaced_everywhere(captured: io.StringIO) -> None:
    """A value the process handled is scrubbed from messages, fields and encodings."""
    canary = "CANARY-v@lue &=/ 42"
    SECRETS.register(canary)
    log = get_logger("bot.test")
    log.info(f"careless {canary}", note=f"x{canary}y", nested={"deep": [canary]})
    logging.getLogger("slack_sdk").debug("body: payload=%s", "CANARY-v%40lue+%26%3D%2F+42")
    out = captured.getvalue()
    assert "CANARY" not in out
    assert out.count("[REDACTED]") >= 4


def test_secret_keys_and_token_shapes_are_redacted(captured: io.StringIO) -> None:
    """Keys like token or client_secret, and xoxb-/Bearer shapes, never print."""
    log = get_logger("bot.test")
    log.info("call", access_token="abc.def.ghi", client_secret="s3", secret_name="API_KEY")
    logging.getLogger("httpx").info(
        "Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.x.y xoxb-123-456-abc"
    )
    first, second = _lines(captured)
    assert first["access_token"] == "[REDACTED]"
    assert first["client_secret"] == "[REDACTED]"
    assert first["secret_name"] == "API_KEY"
    assert "eyJhbG" not in str(second["event"])
    assert "xoxb-123" not in str(second["event"])


def test_slack_payload_with_a_value_field_is_dropped(captured: io.StringIO) -> None:
    """A badly signed request body logged by Bolt never shows a typed value."""
    body = "payload=%7B%22secret_value%22%3A%7B%22value%22%3A%22unregistered%22%7D%7D"
    logging.getLogger("slack_bolt").info("Invalid request signature detected (body: %s)", body)
    assert "unregistered" not in captured.getvalue()


def test_registry_forgets_old_values_but_never_pinned_credentials(
    captured: io.StringIO,
) -> None:
    """Past its size the registry drops the oldest handled values, never pinned credentials."""
    SECRETS.pin("pinned-credential-1234")
    for n in range(300):
        SECRETS.register(f"handled-value-{n:04d}")
    get_logger("bot.test").info("pinned-credential-1234 handled-value-0299 handled-value-0000")
    event = next(str(line["event"]) for line in _lines(captured) if line["logger"] == "bot.test")
    assert "pinned-credential" not in event
    assert "handled-value-0299" not in event
    assert "handled-value-0000" in event  # evicted: a long-lived process keeps a bounded list
