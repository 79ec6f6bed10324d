"""Logging: one structlog processor chain for every logger, with redaction built in."""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO
from urllib.parse import quote, quote_plus

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "[REDACTED]"
# Keys whose values are secrets whatever they hold; `secret_name` is deliberately not one.
SECRET_KEYS = re.compile(
    r"(?i)^(.*token.*|.*password.*|authorization|.*signing_secret.*|client_secret|"
    r"secret_value|value|api_key|.*encryption_key.*|cookie|set-cookie|x-slack-signature)$"
)
# Token shapes that must never be printed even if nobody registered them.
TOKEN_SHAPES = re.compile(
    r"(xox[abposr]-[A-Za-z0-9-]{6,}|xapp-[A-Za-z0-9-]{6,}|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}"
    # A JWT (the Management API access token) on its own.
    r"|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})"
)
# A Slack payload carrying the value field: redact the whole string rather than parse it.
VALUE_FIELD_MARKERS = ("secret_value", "secret%5Fvalue")
# A slash command's form body (Bolt logs badly signed ones): its text may hold a typed value.
COMMAND_TEXT = re.compile(r"(?<![^&\s(])text=[^&\s]*")
# The same as JSON or a dict repr (slack_sdk logs Socket Mode envelopes at DEBUG).
COMMAND_KEY = re.compile(r"""["']command["']\s*:""")
COMMAND_TEXT_QUOTED = re.compile(r"""(["']text["']\s*:\s*)(["'])(?:\\.|(?!\2).)*\2""")


class SecretRegistry:
    """Values this process has handled and must never print, in every encoding they travel in."""

    def __init__(self, recent: int = 256) -> None:
        self._lock = threading.Lock()
        # Values seen recently, oldest first: a long-running bot must not scan an ever-growing
        # list, and a value is only in memory (so only loggable) around the time it's handled.
        self._recent: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        self._limit = recent
        self._pinned: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def pin(self, *values: str | None) -> None:
        """Register credentials the process holds for its whole life: never forgotten."""
        with self._lock:
            self._pinned.update(v for v in values if v and len(v) >= 4)
        self.register(*values)

    def register(self, *values: str | None) -> None:
        """Remember values (and their JSON and URL encodings) to scrub from every log line."""
        added = False
        with self._lock:
            for value in values:
                if not value or len(value) < 4:
                    continue  # too short to scrub without mangling ordinary words
                if value in self._recent:
                    self._recent.move_to_end(value)
                    continue
                self._recent[value] = tuple(set(_encodings(value)))
                added = True
                for old in list(self._recent):
                    if len(self._recent) <= self._limit:
                        break
                    if old not in self._pinned:
                        del self._recent[old]
            if added:
                needles = {n for forms in self._recent.values() for n in forms}
                ordered = sorted(needles, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(n) for n in ordered))

    def scrub(self, text: str, *, drop_payloads: bool = True) -> str:
        """Replace every registered value and token shape in ``text``; with ``drop_payloads``,
        replace all of a text that names the value field (a logged Slack payload)."""
        pattern = self._pattern
        if pattern is not None:
            text = pattern.sub(REDACTED, text)
        text = TOKEN_SHAPES.sub(REDACTED, text)
        if "command=" in text:
            text = COMMAND_TEXT.sub(f"text={REDACTED}", text)
        if COMMAND_KEY.search(text):
            text = COMMAND_TEXT_QUOTED.sub(rf"\1\2{REDACTED}\2", text)
        if drop_payloads and any(marker in text for marker in VALUE_FIELD_MARKERS):
            return f"{REDACTED} (a Slack payload carrying a secret value)"
        return text

    def clear(self) -> None:
        """Forget every registered value (tests only)."""
        with self._lock:
            self._recent.clear()
            self._pinned.clear()
            self._pattern = None


def _encodings(value: str) -> Iterable[str]:
    escaped = json.dumps(value)[1:-1]
    for form in {value, escaped}:
        yield form
        yield quote(form, safe="")
        yield quote_plus(form, safe="")


SECRETS = SecretRegistry()


def redact(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: drop secret-bearing keys and scrub registered values everywhere."""
    return {key: _redact_value(key, value) for key, value in event_dict.items()}


def _redact_value(key: str, value: Any) -> Any:
    if key not in ("event", "secret_name") and SECRET_KEYS.match(key):
        return REDACTED if value is not None else None
    if isinstance(value, str):
        return SECRETS.scrub(value)
    if isinstance(value, MutableMapping):
        return {str(k): _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value("", item) for item in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return SECRETS.scrub(repr(value))


# Libraries whose INFO lines (alembic's plugin set-up and migration context, gunicorn's boot and
# signal notes) would drown the bot's own at start-up: below DEBUG only their warnings pass.
THIRD_PARTY = ("alembic", "gunicorn", "slack_bolt", "slack_sdk", "httpx", "httpcore", "sqlalchemy")
# Bolt reads SLACK_BOT_TOKEN from the environment by itself and warns that it goes unused
# next to the client the bot hands it: expected, and nothing an operator should act on.
BOLT_UNUSED_CLIENT_NOTE = "As you gave `client` as well, `token` will be unused."


class _QuietLibraries(logging.Filter):
    """Drops third-party records below WARNING (and Bolt's token note) unless at DEBUG."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if self.level <= logging.DEBUG or record.name.split(".")[0] not in THIRD_PARTY:
            return True
        return record.levelno >= logging.WARNING and record.getMessage() != BOLT_UNUSED_CLIENT_NOTE


def shared_processors() -> list[Processor]:
    """The chain every record passes through, from structlog or from stdlib logging."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
    ]


def configure_logging(
    level: str = "INFO", fmt: str | None = None, stream: TextIO | None = None
) -> None:
    """Route structlog and stdlib (Bolt, slack_sdk, httpx, SQLAlchemy) through one chain."""
    stream = stream or sys.stdout
    if fmt is None:
        fmt = "console" if stream.isatty() else "json"
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(colors=stream.isatty())
        if fmt == "console"
        else structlog.processors.JSONRenderer(sort_keys=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # On the handler, not the loggers: gunicorn sets its own loggers' levels when it starts.
    handler.addFilter(_QuietLibraries(root.level))
    structlog.configure(
        processors=[
            *shared_processors(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger that writes through the shared chain."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
