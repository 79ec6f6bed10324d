"""The sandbox tenant's HTTP plumbing: rate-limit buckets, recorded requests, the server and
Auth0's answer shapes (split from ``standins.auth0`` so that each file stays readable)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Final
from urllib.parse import parse_qsl, urlsplit

from standins.auth0_actions import error_envelope


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: ``burst`` requests at once, refilled at ``per_second``."""

    burst: int
    per_second: float

    FREE: ClassVar[RateLimit]
    ESSENTIALS: ClassVar[RateLimit]
    ENTERPRISE: ClassVar[RateLimit]


# Auth0's published Management API buckets.
RateLimit.FREE = RateLimit(burst=2, per_second=2.0)
RateLimit.ESSENTIALS = RateLimit(burst=10, per_second=150 / 60)
RateLimit.ENTERPRISE = RateLimit(burst=50, per_second=16.0)
# Without a preset the sandbox still sends the headers, from a bucket tests never empty.
GENEROUS: Final = RateLimit(burst=1000, per_second=1000.0)


@dataclass(frozen=True)
class RecordedRequest:
    """One request the sandbox received, and what it answered (``status`` None: dropped)."""

    method: str
    path: str
    query: str
    headers: dict[str, str] = field(repr=False)  # lower-cased names
    body: bytes = field(repr=False)
    received_at: float
    status: int | None
    response_headers: dict[str, str] = field(repr=False)
    response_body: bytes = field(repr=False)

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def params(self) -> dict[str, str]:
        return dict(parse_qsl(self.query, keep_blank_values=True))


@dataclass(frozen=True)
class Incoming:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class Refusal(Exception):
    """Stops handling a request with the error answer Auth0 would give."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        super().__init__(answer.status)


class Bucket:
    """Auth0-style rate limiting; the caller holds the sandbox lock."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float]) -> None:
        self._limit = limit
        self._clock = clock
        self._level = float(limit.burst)
        self._updated = clock()

    def take(self) -> tuple[bool, dict[str, str]]:
        """Spend one request if the bucket allows it; the x-ratelimit-* headers either way."""
        now = self._clock()
        refill = (now - self._updated) * self._limit.per_second
        self._level = min(float(self._limit.burst), self._level + refill)
        self._updated = now
        allowed = self._level >= 1.0
        if allowed:
            self._level -= 1.0
        full_at = now + (self._limit.burst - self._level) / self._limit.per_second
        headers = {
            "x-ratelimit-limit": str(self._limit.burst),
            "x-ratelimit-remaining": str(math.floor(self._level)),
            "x-ratelimit-reset": str(math.ceil(full_at)),
        }
        return allowed, headers


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 drops simultaneous connects, which then wait a second for SYN retry.
    request_queue_size = 128
    # The tenant's handler: an answer, or None to drop the connection after a write.
    answer: Callable[[Incoming], Answer | None]


class Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; Nagle plus delayed ACK would add 40 ms each.
    disable_nagle_algorithm = True
    # Idle keep-alive connections end on their own rather than pinning threads forever.
    timeout = 5

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the stderr access log; ``Auth0Sandbox._answer`` logs without bodies."""

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        answer = self.server.answer(Incoming(self.command, parts.path, parts.query, headers, body))
        if answer is None:
            # Like a load balancer losing the reply: the write is stored, no answer is sent.
            self.close_connection = True
            return
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        if answer.status != 204:
            self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if answer.status != 204:
            self.wfile.write(answer.body)


# Answers ----------------------------------------------------------------------------


def json_answer(status: int, data: Any) -> Answer:
    body = json.dumps(data).encode()
    return Answer(status, body, {"Content-Type": "application/json; charset=utf-8"})


def error(status: int, message: str, error_code: str | None = None) -> Answer:
    return json_answer(status, error_envelope(status, message, error_code))


def oauth_error(status: int, error: str, description: str) -> Answer:
    return json_answer(status, {"error": error, "error_description": description})


def not_found() -> Answer:
    return error(404, "Not Found")


def too_many_requests() -> Answer:
    return error(429, "Global limit has been reached", "too_many_requests")


def with_headers(answer: Answer, headers: dict[str, str]) -> Answer:
    return Answer(answer.status, answer.body, {**answer.headers, **headers})


def invalid_body(reason: str) -> Refusal:
    return Refusal(error(400, f"Payload validation error: '{reason}'.", "invalid_body"))


def json_payload(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise Refusal(error(400, "Invalid request payload JSON format", "invalid_body")) from None


def json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")
