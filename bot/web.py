"""The WSGI application of HTTP mode: Slack events, health and metrics."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any
from urllib.parse import parse_qs

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot.metrics import Metrics
from bot.store import Store

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
EVENTS_PATH = "/slack/events"
# /healthz answers within this many seconds even when the database hangs (a load balancer's
# probe usually gives up after a few seconds and should see a 503, not a timeout).
HEALTH_DEADLINE = 2.0


def wsgi_app(app: App, store: Store, metrics: Metrics) -> WSGIApp:
    """Route ``/slack/events`` to Bolt, ``/healthz`` to the database check, ``/metrics``."""
    slack = SlackRequestHandler(app, path=EVENTS_PATH)
    health = Health(store.ping)

    def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        if path == EVENTS_PATH and method == "POST":
            return _counted(slack, metrics, environ, start_response)
        if path == "/healthz" and method == "GET":
            ok = health.ok()
            body = {"status": "ok"} if ok else {"status": "unavailable", "database": "down"}
            return _reply(
                start_response,
                "200 OK" if ok else "503 Service Unavailable",
                json.dumps(body).encode(),
                "application/json",
            )
        if path == "/metrics" and method == "GET":
            return metrics.serve(environ, start_response)
        return _reply(start_response, "404 Not Found", b'{"error":"not found"}', "application/json")

    return application


def _counted(
    slack: SlackRequestHandler,
    metrics: Metrics,
    environ: dict[str, Any],
    start_response: StartResponse,
) -> Iterable[bytes]:
    """Let Bolt answer, counting the request by its kind and status."""
    size = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(size)
    environ["wsgi.input"] = _Replay(raw)
    kind = _kind(raw)
    status_seen: list[str] = []

    def recording_start(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
        status_seen.append(status.split()[0])
        return start_response(status, headers, *rest)

    started = time.perf_counter()
    body = slack(environ, recording_start)
    metrics.observe_request(kind, status_seen[0] if status_seen else "none", started)
    return body


class Health:
    """Database pings for /healthz: at most one in flight, each answer within a deadline."""

    def __init__(self, ping: Callable[[], bool], deadline: float = HEALTH_DEADLINE) -> None:
        self._ping = ping
        self._deadline = deadline
        self._lock = threading.Lock()
        self._inflight: Future[bool] | None = None

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
            future.set_result(bool(self._ping()))
        except Exception:  # any failure means "not healthy"
            future.set_result(False)


def _kind(raw: bytes) -> str:
    fields = parse_qs(raw.decode("utf-8", "replace"))
    if "command" in fields:
        return "slash_command"
    payload = fields.get("payload", [""])[0]
    try:
        return str(json.loads(payload).get("type", "unknown")) if payload else "unknown"
    except json.JSONDecodeError:
        return "unknown"


class _Replay:
    """A ``wsgi.input`` that replays a body already read."""

    def __init__(self, raw: bytes) -> None:
        self._raw = raw
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._raw) if size is None or size < 0 else self._pos + size
        chunk, self._pos = self._raw[self._pos : end], min(end, len(self._raw))
        return chunk


def _reply(
    start_response: StartResponse, status: str, body: bytes, content_type: str
) -> Iterable[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]
