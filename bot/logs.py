"""Logging: one structlog processor chain for every logger, with redaction built in."""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections import deque
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
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
    """Values this process has handled and must never print, in every encoding they travel in.

    Compiling one pattern of every value costs about 0.1 ms per value, and ``re`` caches up to
    512 compiled patterns: recompiling on each new value made a submission spend most of its
    CPU there and the process grow by tens of MiB. So new values wait in a small list checked
    with ``in``, and every ``CHUNK`` of them is compiled once into a pattern of its own; the
    oldest pattern goes when more than ``recent`` values are held. Pinned credentials have one
    pattern, rebuilt only when one is pinned.
    """

    CHUNK = 16

    def __init__(self, recent: int = 256) -> None:
        self._lock = threading.Lock()
        self._chunks = max(1, recent // self.CHUNK)
        # Credentials, by slot (a credential that replaces its predecessor) or by value.
        self._pinned: dict[str, str] = {}
        self._pinned_pattern: tuple[re.Pattern[str], ...] = ()  # compiled when one is pinned
        self._sealed: deque[re.Pattern[str]] = deque()
        self._fresh: dict[str, None] = {}  # insertion-ordered set of new values
        self._state = _Needles((), ())

    def pin(self, *values: str | None, slot: str | None = None) -> None:
        """Register credentials the process holds for its whole life: never forgotten. A value
        pinned in a ``slot`` (a renewed access token) replaces the one pinned there before."""
        kept = [v for v in values if v and len(v) >= 4 and _encodable(v)]
        with self._lock:
            for value in kept:
                self._pinned[slot or value] = value
            if kept:
                self._pinned_pattern = (_pattern(self._pinned.values()),)
                self._publish()

    def register(self, *values: str | None) -> None:
        """Remember values (and their JSON and URL encodings) to scrub from every log line."""
        with self._lock:
            changed = False
            for value in values:
                if not value or len(value) < 4:
                    continue  # too short to scrub without mangling ordinary words
                # A value handled again (decrypted to apply) starts a new life among the fresh.
                if value not in self._fresh and _encodable(value):
                    self._fresh[value] = None
                    changed = True
                if len(self._fresh) >= self.CHUNK:
                    self._sealed.append(_pattern(self._fresh))
                    self._fresh = {}
                    while len(self._sealed) > self._chunks:
                        self._sealed.popleft()
            if changed:
                self._publish()

    def _publish(self) -> None:
        # Scrubbing reads one immutable snapshot, without the lock.
        pinned = self._pinned_pattern
        fresh = sorted({n for v in self._fresh for n in _encodings(v)}, key=len, reverse=True)
        self._state = _Needles((*pinned, *self._sealed), tuple(fresh))

    def size(self) -> int:
        """How many handled values (not pinned credentials) are remembered."""
        return len(self._sealed) * self.CHUNK + len(self._fresh)

    def scrub(self, text: str, *, drop_payloads: bool = True) -> str:
        """Replace every registered value and token shape in ``text``; with ``drop_payloads``,
        replace all of a text that names the value field (a logged Slack payload)."""
        text = self._state.redact(text)
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
            self._pinned.clear()
            self._pinned_pattern = ()
            self._sealed.clear()
            self._fresh = {}
            self._state = _Needles((), ())


@dataclass(frozen=True)
class _Needles:
    """What to redact: compiled patterns and fresh literal strings (longest first)."""

    patterns: tuple[re.Pattern[str], ...]
    literals: tuple[str, ...]

    def redact(self, text: str) -> str:
        """``text`` with the union of every match replaced, so that a value overlapping
        another (one inside the other, in different chunks) is never half printed."""
        spans = [m.span() for p in self.patterns for m in p.finditer(text)]
        for needle in self.literals:
            at = text.find(needle)
            while at >= 0:
                spans.append((at, at + len(needle)))
                at = text.find(needle, at + 1)
        if not spans:
            return text
        pieces: list[str] = []
        end = 0
        for start, stop in sorted(spans):
            if start > end or not pieces:
                pieces.append(text[end:start])
                pieces.append(REDACTED)
            end = max(end, stop)
        return "".join(pieces) + text[end:]


def _encodable(value: str) -> bool:
    """Whether every encoding of ``value`` can be computed: a value that could not would fail
    each later publish and so poison the registry for every log line after it."""
    try:
        list(_encodings(value))
    except Exception:  # kept out whole rather than poisoning the registry
        return False
    return True


def _pattern(values: Iterable[str]) -> re.Pattern[str]:
    needles = sorted({n for v in values for n in _encodings(v)}, key=len, reverse=True)
    return re.compile("|".join(re.escape(n) for n in needles))


def _encodings(value: str) -> Iterable[str]:
    """``value`` as it may travel: raw, JSON-escaped, and URL-encoded. Never raises: text that
    is not valid Unicode (a lone surrogate, valid in JSON) is URL-encoded byte for byte."""
    escaped = json.dumps(value)[1:-1]
    for form in {value, escaped}:
        yield form
        yield quote(form, safe="", errors="surrogatepass")
        yield quote_plus(form, safe="", errors="surrogatepass")


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
