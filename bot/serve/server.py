"""HTTP mode under gunicorn (threaded workers), and Socket Mode."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger as GunicornLogger
from gunicorn.workers.gthread import ThreadWorker

from bot.latency.deadlines import Deadlines
from bot.latency.frozen_startup import freeze_startup_objects
from bot.logs import SECRETS, configure_logging, get_logger

if TYPE_CHECKING:  # the gunicorn master never imports the app: see serve_http
    from bot.serve.runtime import Runtime
    from bot.serve.wsgi import StartResponse, WSGIApp
    from bot.slack.app import AppSettings

log = get_logger(__name__)
# Seconds in-flight requests and background applies get to finish after SIGTERM: under the
# 30 s most platforms (Heroku, Kubernetes' default) wait before they send SIGKILL.
GRACEFUL_TIMEOUT = 25
# One process, many threads: Slack handlers mostly wait on I/O, and one process keeps one
# executor, one sweeper and one metrics registry. Scale out with replicas (README).
THREADS = 16
# Seconds a connection may stay idle between requests (Slack and load balancers reuse them).
KEEPALIVE = 5
EXIT_STARTUP = 1
# Seconds a client has for its request line and headers once a worker thread takes the
# connection (gunicorn waits up to 5 s of it for a first byte), then for its body until the
# answer starts. Slack sends a whole request at once and gives up on the answer after 3 s.
HEADER_TIMEOUT = 10.0
BODY_TIMEOUT = 10.0
DEADLINES = Deadlines()
# The worker heartbeat file's directory; a disk-backed /tmp can stall it (gunicorn's FAQ).
HEARTBEAT_DIR = "/dev/shm"  # noqa: S108 - gunicorn makes its file there with mkstemp, mode 0600


class _GunicornLogs(GunicornLogger):  # type: ignore[misc]  # gunicorn ships no type hints
    """gunicorn's own lines go through the bot's logging chain (JSON, redacted) like the rest."""

    def setup(self, cfg: Any) -> None:
        self.cfg = cfg
        self.loglevel = self.LOG_LEVELS.get(cfg.loglevel.lower(), logging.INFO)
        self.error_log.setLevel(self.loglevel)
        self.error_log.propagate = True
        self.access_log.propagate = False

    def access(self, *_: Any) -> None:
        """No access log: /metrics counts requests by kind and outcome instead."""


class BoundedWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn ships no type hints
    """gunicorn's threaded worker, with a deadline on each request's arrival: a client that
    trickles its headers or body (slow loris) loses its connection instead of a thread."""

    def handle(self, conn: Any) -> Any:
        DEADLINES.guard(conn.sock, HEADER_TIMEOUT)
        try:
            return super().handle(conn)
        finally:
            DEADLINES.release()


def bounded(app: WSGIApp) -> WSGIApp:
    """``app`` reading its body within ``BODY_TIMEOUT``; no deadline once the answer starts."""

    def application(environ: dict[str, Any], start_response: StartResponse) -> Any:
        DEADLINES.extend(BODY_TIMEOUT)

        def answering(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            DEADLINES.release()
            return start_response(status, headers, *rest)

        return app(environ, answering)

    return application


class WSGIServer(BaseApplication):  # type: ignore[misc]  # gunicorn ships no type hints
    """gunicorn (one gthread worker) serving whatever WSGI app ``load`` builds in the worker.

    The bot uses it through ``BotServer``; the benchmarks serve bare Bolt apps on it, so that
    both sides of a comparison run on the same server stack.
    """

    def __init__(self, port: int, log_level: str = "INFO", threads: int = THREADS) -> None:
        self.port = port
        self.log_level = log_level
        self.threads = threads
        super().__init__()

    def load_config(self) -> None:
        config: dict[str, Any] = {
            "bind": f"0.0.0.0:{self.port}",
            "workers": 1,
            "worker_class": BoundedWorker,
            "threads": self.threads,
            "keepalive": KEEPALIVE,
            "graceful_timeout": GRACEFUL_TIMEOUT,
            "timeout": 60,
            "loglevel": self.log_level.lower(),
            "logger_class": _GunicornLogs,
            "worker_exit": lambda _arbiter, _worker: self.on_exit(),
            "proc_name": "hook-secret-bot",
            # Header sizes stay gunicorn's (a 4 KiB request line, 100 fields of 8 KiB): room
            # for what proxies in front add, and bounded; the deadlines bound the time.
        }
        if os.path.isdir(HEARTBEAT_DIR):
            config["worker_tmp_dir"] = HEARTBEAT_DIR
        if "control_socket_disable" in self.cfg.settings:
            # gunicorn ≥ 27 opens ~/.gunicorn/gunicorn.ctl; replicas on one host would share it.
            config["control_socket_disable"] = True
        for key, value in config.items():
            self.cfg.set(key, value)

    def load(self) -> WSGIApp:
        """Build the WSGI app; runs in the worker, after the fork."""
        raise NotImplementedError

    def on_exit(self) -> None:
        """Called in the worker once its last request is answered (SIGTERM)."""


class BotServer(WSGIServer):
    """gunicorn running the bot's WSGI app; settings are read and the runtime built inside
    the worker."""

    def __init__(self, port: int, log_level: str = "INFO", threads: int = THREADS) -> None:
        self.runtime: Runtime | None = None
        super().__init__(port, log_level, threads)

    def load(self) -> WSGIApp:
        from bot.serve.runtime import build_runtime
        from bot.settings import load_serving_settings

        settings = load_serving_settings()
        self.runtime = build_runtime(settings)
        freeze_startup_objects()  # before the sweeper's first pass makes anything to collect
        self.runtime.start_sweeper()
        log.info("serving Slack over HTTP", port=self.port, threads=self.threads)
        secret = settings.slack_signing_secret
        return bounded(self.runtime.wsgi(secret.get_secret_value() if secret else ""))

    def on_exit(self) -> None:
        if self.runtime is not None:
            log.info("shutting down: finishing in-flight work")
            self.runtime.close(GRACEFUL_TIMEOUT - 2)
            log.info("shut down cleanly")


def serve_http(settings: AppSettings) -> None:
    """Serve HTTP mode until SIGTERM (graceful) or SIGINT."""
    _preflight_or_exit(settings)
    # gunicorn's master only forks and watches the worker. Started afresh in this process
    # (same pid: signals still reach it) it never imports the app, and holds ~25 MiB instead
    # of ~85 MiB; the worker reads the same environment and builds everything after the fork.
    command = [sys.executable, "-m", "bot.serve.master", str(settings.port), settings.log_level]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [*command, settings.log_format or ""])  # noqa: S606 - this interpreter, our module


def main() -> None:
    """The gunicorn master ``serve_http`` execs into (``python -m bot.serve.master``)."""
    port, log_level, log_format = sys.argv[1:4]
    configure_logging(log_level, log_format or None)
    BotServer(int(port), log_level).run()


def serve_socket_mode(settings: AppSettings) -> None:
    """Serve through Socket Mode until SIGTERM or SIGINT, then finish in-flight work."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from bot.serve.runtime import build_runtime

    _preflight_or_exit(settings)
    runtime = build_runtime(settings)
    freeze_startup_objects()
    runtime.start_sweeper()
    token = settings.slack_app_token.get_secret_value() if settings.slack_app_token else ""
    handler = SocketModeHandler(runtime.app, token)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    handler.connect()  # type: ignore[no-untyped-call]  # slack_bolt leaves it unannotated
    log.info("connected to Slack through Socket Mode")
    stop.wait()
    log.info("shutting down: finishing in-flight work")
    # Stop taking envelopes and let the listeners already running ack (close() drains them; it
    # may also wait out a 3 s socket read), then finish the background work they queued.
    closing = threading.Thread(target=handler.close, name="socket-close", daemon=True)
    closing.start()
    closing.join(timeout=10)
    runtime.close(GRACEFUL_TIMEOUT - 12)
    log.info("shut down cleanly")


def _preflight_or_exit(settings: AppSettings) -> None:
    """Fail before opening a port when the database or Slack can't be reached."""
    from bot.serve.runtime import StartupError, preflight

    try:
        preflight(settings)
    except StartupError as error:
        # A plain line first, for the person at a terminal; then the log line, for collectors.
        print(f"cannot start: {SECRETS.scrub(str(error))}", file=sys.stderr, flush=True)
        log.error("cannot start", problem=str(error))
        raise SystemExit(EXIT_STARTUP) from None
