"""The WSGI application of HTTP mode: Slack events (bounded, verified, parsed), health, metrics."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import structlog
from slack_bolt import App, BoltResponse
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from slack_bolt.adapter.wsgi.http_response import WsgiHttpResponse
from slack_sdk.signature import SignatureVerifier

from bot.db.store import Store
from bot.latency.yielding import InFlight
from bot.logs import get_logger
from bot.metrics import Metrics
from bot.slack import body as slack_body
from bot.slack import outage

log = get_logger(__name__)
StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
EVENTS_PATH = "/slack/events"
# Slack's payloads stay far below this (a full modal is tens of KiB); more is refused unread.
MAX_BODY = 1 << 20
# /healthz answers within this many seconds even when the database hangs (a load balancer's
# probe usually gives up after a few seconds and should see a 503, not a timeout).
HEALTH_DEADLINE = 2.0
# Requests that record something: while the database is down they are answered "nothing was
# recorded" at once, judged by a database check at most this many seconds old.
RECORDING = ("view_submission", "block_actions")
RECENT = 1.0


def wsgi_app(
    app: App,
    store: Store,
    metrics: Metrics,
    *,
    signing_secret: str,
    in_flight: InFlight | None = None,
) -> WSGIApp:
    """Route ``/slack/events`` to Bolt, ``/healthz`` to the database check, ``/metrics``;
    Slack requests are counted in ``in_flight`` while answered (background work yields)."""
    health = Health(store.writable)
    slack = SlackEvents(app, SignatureVerifier(signing_secret), metrics, health)
    counted = in_flight or InFlight()

    def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        if path == EVENTS_PATH and method == "POST":
            with counted.request():
                return slack(environ, start_response)
        if path == "/healthz" and method == "GET":
            ok = health.ok()
            body = {"status": "ok"} if ok else {"status": "unavailable", "database": "down"}
            return _reply(
                start_response,
                "200 OK" if ok else "503 Service Unavailable",
                json.dumps(body, separators=(",", ":")).encode(),  # CONTRACT §3, byte for byte
                "application/json",
            )
        if path == "/metrics" and method == "GET":
            return metrics.serve(environ, start_response)
        return _reply(start_response, "404 Not Found", b'{"error":"not found"}', "application/json")

    return application


class SlackEvents:
    """``POST /slack/events``: bounded, verified, parsed as Slack sends it, then Bolt's."""

    def __init__(
        self, app: App, verifier: SignatureVerifier, metrics: Metrics, health: Health
    ) -> None:
        self._app = app
        self._verifier = verifier
        self._metrics = metrics
        self._health = health

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        # A server thread answers many requests: none logs with the last one's context.
        structlog.contextvars.clear_contextvars()
        kind, response = self._answer(environ)
        answer = WsgiHttpResponse(response.status, response.headers, response.body)
        self._metrics.observe_request(kind, str(response.status), started)
        start_response(answer.status, answer.get_headers())
        return answer.get_body()

    def _answer(self, environ: dict[str, Any]) -> tuple[str, BoltResponse]:
        try:
            raw = read_body(environ)
        except BodyTooLarge:
            return "unknown", _plain(413, "Slack never sends a body this large.")
        content_type = environ.get("CONTENT_TYPE")
        if slack_body.is_ssl_check(raw, content_type):
            return "unknown", BoltResponse(status=200, body="")  # CONTRACT §3: does nothing
        headers = _headers(environ)
        if not self._signed(raw, headers):
            # Nothing of an unverified body is parsed: it may be anything (issue 23.5).
            return slack_body.kind_guess(raw), BoltResponse(
                status=401, body={"error": "invalid request"}
            )
        try:
            body = slack_body.parse(raw, content_type)
            request = slack_body.ParsedRequest(
                raw.decode("utf-8"), body, environ.get("QUERY_STRING", ""), headers
            )
        except slack_body.Malformed as problem:
            # Signed, yet not what Slack sends: answered like bad input, nothing runs.
            log.warning("malformed Slack request", problem=str(problem))  # where, never what
            return "unknown", _plain(400, "Malformed Slack request; nothing was done.")
        kind = slack_body.kind_of(body)
        if kind in RECORDING and not self._health.recent():
            # Said before any listener runs: an ack followed by a failure in the background
            # would leave the person with silence.
            return kind, outage.answer(body)
        return kind, self._app.dispatch(request)

    def _signed(self, raw: bytes, headers: dict[str, str | Sequence[str]]) -> bool:
        """slack_sdk's check of Slack's signature, guarded: headers Slack would never send (a
        timestamp that is not a number, a signature that is not ASCII) and bodies it never
        signs (not UTF-8) are unsigned, never an exception."""
        timestamp = _header(headers, "x-slack-request-timestamp")
        signature = _header(headers, "x-slack-signature")
        if not (0 < len(timestamp) <= 20 and timestamp.isascii() and timestamp.isdigit()):
            return False
        if not signature.isascii():  # hmac.compare_digest raises TypeError on such text
            return False
        try:
            return self._verifier.is_valid(raw, timestamp, signature)
        except (ValueError, TypeError):  # a body that is not UTF-8, among others
            return False


class BodyTooLarge(Exception):
    """The request announced (or sent) more than ``MAX_BODY`` bytes."""


def read_body(environ: dict[str, Any]) -> bytes:
    """The request body, refusing before reading one that announces more than ``MAX_BODY``."""
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH") or ""
    if length:
        size = int(length) if length.isdigit() else MAX_BODY + 1
        if size > MAX_BODY:
            raise BodyTooLarge
        data: bytes = stream.read(size)
        return data
    if not environ.get("wsgi.input_terminated"):
        return b""  # PEP 3333: without a length (or a server that ends the stream), no body
    # A chunked body: read one byte past the cap to know it was over.
    data = stream.read(MAX_BODY + 1)
    if len(data) > MAX_BODY:
        raise BodyTooLarge
    return data


class Health:
    """Database pings for /healthz: at most one in flight, each answer within a deadline."""

    def __init__(self, ping: Callable[[], bool], deadline: float = HEALTH_DEADLINE) -> None:
        self._ping = ping
        self._deadline = deadline
        self._lock = threading.Lock()
        self._inflight: Future[bool] | None = None
        self._last: tuple[float, bool] | None = None

    def recent(self, max_age: float = RECENT) -> bool:
        """The answer of a check at most ``max_age`` seconds old, else ``ok()``."""
        with self._lock:
            last = self._last
        if last is not None and time.monotonic() - last[0] <= max_age:
            return last[1]
        return self.ok()

    def ok(self) -> bool:
        """Whether the database answered, waiting at most the deadline."""
        with self._lock:
            future = self._inflight
            if future is None or future.done():
                future = self._inflight = Future()
                # A daemon thread: a ping stuck on a dead database must not hold up exit.
                threading.Thread(
                    target=self._run, args=(future,), name="healthz", daemon=True
                ).start()
        try:
            return future.result(timeout=self._deadline)
        except FutureTimeout:
            return False

    def _run(self, future: Future[bool]) -> None:
        try:
            healthy = bool(self._ping())
        except Exception:  # any failure means "not healthy"
            healthy = False
        with self._lock:
            was = self._last[1] if self._last else True
            self._last = (time.monotonic(), healthy)
        if was != healthy:  # one line per change, not one per probe
            if healthy:
                log.info("the database records requests again")
            else:
                log.warning("the database can't record requests: /healthz answers 503")
        future.set_result(healthy)


def _headers(environ: dict[str, Any]) -> dict[str, str | Sequence[str]]:
    """The request's headers as Bolt reads them."""
    headers: dict[str, str | Sequence[str]] = WsgiHttpRequest(environ).get_headers()
    return headers


def _header(headers: dict[str, str | Sequence[str]], name: str) -> str:
    value = headers.get(name, "")
    return value if isinstance(value, str) else (value[0] if value else "")


def _plain(status: int, text: str) -> BoltResponse:
    return BoltResponse(
        status=status, body=text, headers={"content-type": "text/plain; charset=utf-8"}
    )


def _reply(
    start_response: StartResponse, status: str, body: bytes, content_type: str
) -> Iterable[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]
