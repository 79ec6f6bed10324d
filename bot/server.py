"""HTTP mode under gunicorn (threaded workers), and Socket Mode."""

from __future__ import annotations

import signal
import threading
from typing import Any

from gunicorn.app.base import BaseApplication

from bot.logs import get_logger
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings

log = get_logger(__name__)
# Seconds in-flight requests and background applies get to finish after SIGTERM.
GRACEFUL_TIMEOUT = 30


class BotServer(BaseApplication):  # type: ignore[misc]  # gunicorn ships no type hints
    """gunicorn running the bot's WSGI app; the runtime is built inside the worker."""

    def __init__(self, settings: Settings, threads: int = 16) -> None:
        self.settings = settings
        self.threads = threads
        self.runtime: Runtime | None = None
        super().__init__()

    def load_config(self) -> None:
        config = {
            "bind": f"0.0.0.0:{self.settings.port}",
            "workers": 1,
            "worker_class": "gthread",
            "threads": self.threads,
            "graceful_timeout": GRACEFUL_TIMEOUT,
            "timeout": 60,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": self.settings.log_level.lower(),
            "worker_exit": self._worker_exit,
            "logconfig_dict": {
                "version": 1,
                "disable_existing_loggers": False,
                "root": {},
                "loggers": {},
                "handlers": {},
                "formatters": {},
            },
        }
        for key, value in config.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        self.runtime = build_runtime(self.settings)
        self.runtime.start_sweeper()
        log.info("serving Slack over HTTP", port=self.settings.port)
        return self.runtime.wsgi()

    def _worker_exit(self, _server: Any, _worker: Any) -> None:
        if self.runtime is not None:
            log.info("shutting down: finishing in-flight work")
            self.runtime.close()


def serve_http(settings: Settings) -> None:
    """Serve HTTP mode until SIGTERM or SIGINT."""
    BotServer(settings).run()


def serve_socket_mode(settings: Settings) -> None:
    """Serve through Socket Mode until SIGTERM or SIGINT, then finish in-flight work."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    runtime = build_runtime(settings)
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
    handler.close()  # type: ignore[no-untyped-call]  # slack_bolt leaves it unannotated
    runtime.close()
