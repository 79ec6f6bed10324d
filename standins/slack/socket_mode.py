"""Socket Mode side of the Slack stand-in: the WebSocket server ``apps.connections.open`` points
to, which delivers envelopes to the connected app and records its acknowledgements.

Needs the ``websockets`` package (a test extra); ``standins.slack.webapi`` imports this module only
when the stand-in is built with an app-level token.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

from standins.slack.records import ACK_DEADLINE, JSON, Ack

if TYPE_CHECKING:
    from standins.slack.webapi import SlackStandIn

TICKET_TTL: Final = 30.0
ACK_WAIT: Final = ACK_DEADLINE + 0.5


@dataclass(frozen=True)
class SocketAck:
    """One acknowledgement the app sent back over the socket."""

    envelope_id: str
    payload: JSON | None
    raw: str
    time: float
    connection: str  # which connection it came over (``ServerConnection.id``)


class SocketModeStandIn:
    """A WebSocket endpoint like ``wss://wss-primary.slack.com/link/``, on 127.0.0.1."""

    def __init__(self, standin: SlackStandIn) -> None:
        self.standin = standin
        self._cond = threading.Condition()
        self._tickets: dict[str, float] = {}
        self._connections: list[ServerConnection] = []
        self._retiring: set[ServerConnection] = set()  # told to disconnect: no new envelopes
        self._acks: dict[str, SocketAck] = {}
        self._ack_log: list[SocketAck] = []
        self._envelopes: list[JSON] = []
        self._next = 0
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._url = ""

    def start(self) -> None:
        """Listen on an ephemeral port of 127.0.0.1."""
        self._server = serve(
            self._session,
            "127.0.0.1",
            0,
            process_request=self._check_ticket,
            ping_interval=None,
            compression=None,
        )
        host, port = self._server.socket.getsockname()[:2]
        self._url = f"ws://{host}:{port}/link/"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="slack-socket-standin", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Close every connection and stop listening."""
        with self._cond:
            connections = list(self._connections)
        for connection in connections:
            connection.close()
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def issue_url(self) -> str:
        """A WebSocket URL with a fresh single-use ticket (what ``apps.connections.open`` gives)."""
        ticket = str(uuid.uuid4())
        with self._cond:
            self._tickets[ticket] = time.monotonic()
        return f"{self._url}?ticket={ticket}&app_id={self.standin.app_id}"

    # -- the server side ----------------------------------------------------

    def _check_ticket(self, connection: ServerConnection, request: Request) -> Response | None:
        ticket = parse_qs(urlsplit(request.path).query).get("ticket", [""])[0]
        with self._cond:
            issued = self._tickets.pop(ticket, None)
        if issued is None or time.monotonic() - issued > TICKET_TTL:
            return connection.respond(401, "invalid or used ticket\n")
        return None

    def _session(self, connection: ServerConnection) -> None:
        with self._cond:
            hello = {
                "type": "hello",
                "num_connections": len(self._connections) + 1,
                "debug_info": {
                    "host": "applink-standin",
                    "build_number": 1,
                    "approximate_connection_time": 18060,
                },
                "connection_info": {"app_id": self.standin.app_id},
            }
        connection.send(json.dumps(hello))
        with self._cond:
            self._connections.append(connection)
            self._cond.notify_all()
        try:
            for raw in connection:
                text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
                self._record(text, str(connection.id))
        except ConnectionClosed:
            pass
        finally:
            with self._cond:
                if connection in self._connections:
                    self._connections.remove(connection)
                self._retiring.discard(connection)
                self._cond.notify_all()

    def _record(self, raw: str, connection: str) -> None:
        try:
            message: Any = json.loads(raw)
        except ValueError:
            return
        if not isinstance(message, dict) or "envelope_id" not in message:
            return
        payload = message.get("payload")
        ack = SocketAck(
            str(message["envelope_id"]),
            payload if isinstance(payload, dict) else None,
            raw,
            time.time(),
            connection,
        )
        with self._cond:
            self._acks[ack.envelope_id] = ack
            self._ack_log.append(ack)
            self._cond.notify_all()

    # -- what tests use -------------------------------------------------------

    def _live(self) -> list[ServerConnection]:
        return [c for c in self._connections if c not in self._retiring]

    @property
    def connection_count(self) -> int:
        """Open connections that still receive envelopes."""
        with self._cond:
            return len(self._live())

    @property
    def acks(self) -> list[SocketAck]:
        """Every acknowledgement received, in order."""
        with self._cond:
            return list(self._ack_log)

    @property
    def envelopes(self) -> list[JSON]:
        """Every envelope sent to the app, in order."""
        with self._cond:
            return list(self._envelopes)

    def wait_connected(self, count: int = 1, timeout: float = 5.0) -> None:
        """Block until ``count`` connections are open."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._live()) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(self._live())} of {count} connections open")
                self._cond.wait(remaining)

    def send_envelope(
        self,
        envelope_type: str,
        payload: JSON,
        *,
        accepts_response_payload: bool = True,
        envelope_id: str | None = None,
    ) -> str:
        """Send one envelope to one of the open connections (in turn, as Slack spreads them);
        return its ``envelope_id``."""
        envelope_id = envelope_id or f"{uuid.uuid4()}"
        envelope = {
            "envelope_id": envelope_id,
            "type": envelope_type,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        with self._cond:
            self.wait_connected()  # the condition's lock is reentrant; waiting releases it
            live = self._live()
            connection = live[self._next % len(live)]
            self._next += 1
            self._envelopes.append(envelope)
        connection.send(json.dumps(envelope))
        return envelope_id

    def wait_ack(self, envelope_id: str, timeout: float = ACK_WAIT) -> SocketAck | None:
        """The acknowledgement of an envelope, or ``None`` when none came in time."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while envelope_id not in self._acks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
            return self._acks[envelope_id]

    def deliver(
        self, envelope_type: str, payload: JSON, *, accepts_response_payload: bool = True
    ) -> Ack:
        """Send an envelope and wait for its ack, answered as an ``Ack`` (status 0: none)."""
        started = time.monotonic()
        envelope_id = self.send_envelope(
            envelope_type, payload, accepts_response_payload=accepts_response_payload
        )
        ack = self.wait_ack(envelope_id)
        elapsed = time.monotonic() - started
        if ack is None:
            return Ack(0, b"", {}, elapsed, (f"no acknowledgement within {ACK_WAIT} s",))
        problems = (
            ()
            if elapsed <= ACK_DEADLINE
            else (f"operation_timeout: acknowledged after {elapsed:.1f} s",)
        )
        body = json.dumps(ack.payload).encode() if ack.payload else b""
        headers = {"content-type": "application/json"} if body else {}
        return Ack(200, body, headers, elapsed, problems)

    def disconnect_all(self, reason: str = "refresh_requested") -> None:
        """Ask every connection to reconnect, as Slack does before rotating its servers."""
        with self._cond:
            connections = self._live()
            self._retiring.update(connections)
        message = json.dumps(
            {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-standin"}}
        )
        for connection in connections:
            connection.send(message)
