"""Serve a WSGI app on 127.0.0.1 in a thread: the bot's HTTP mode for tests and the demo."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from bot.db.encryption import Vault
from bot.db.store import Store
from bot.metrics import Metrics
from bot.serve import lifecycle
from bot.serve.runtime import auth0_clients, slack_client
from bot.serve.wsgi import WSGIApp, wsgi_app
from bot.slack.app import AppSettings, Deps, create_app
from bot.slack.services import Services


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    # socketserver's default backlog of 5 resets connections when 16 clients connect at once
    # on a loaded machine; gunicorn's is 2048.
    request_queue_size = 128


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Access lines are noise here; the bot logs what matters."""


@contextmanager
def serve_wsgi(app: WSGIApp) -> Iterator[str]:
    """Serve ``app`` on an ephemeral loopback port; yields its base URL."""
    server = make_server(
        "127.0.0.1", 0, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def local_bot(
    settings: AppSettings,
    store: Store,
    team_id: str,
    now: Callable[[], datetime] | None = None,
    **auth0_options: Any,
) -> Iterator[tuple[str, Services]]:
    """The real app built from ``settings`` (pointed at local stand-ins), served on loopback;
    yields its base URL and services, and finishes background work on the way out."""
    # The production clients (retry handlers, Auth0 pacing), pointed at the stand-ins.
    slack = slack_client(settings)
    auth0 = auth0_clients(settings, **auth0_options)
    deps = Deps(
        slack=slack,
        auth0=auth0,
        store=store,
        vault=Vault(settings.encryption_keys),
        team_id=team_id,
    )
    if now is not None:
        deps.now = now
    app, services = create_app(settings, deps)
    services.workflow.expire_policy_changed()  # as a start does (bot.serve.runtime)
    try:
        secret = settings.slack_signing_secret
        signing = secret.get_secret_value() if secret else ""
        with serve_wsgi(wsgi_app(app, store, Metrics(), signing_secret=signing)) as url:
            yield url, services
    finally:
        lifecycle.shutdown(services)
        for client in auth0.values():
            client.close()
