"""Bounded input on a real ``hook-secret-bot run``: oversized, trickled and huge requests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from bot.latency.deadlines import Deadlines
from bot.serve.server import BODY_TIMEOUT, HEADER_TIMEOUT
from bot.serve.wsgi import MAX_BODY
from standins.auth0 import Auth0Sandbox
from standins.slack import SlackDriver, SlackStandIn
from tests.harness.process import (
    BOT_TOKEN,
    ORIGIN,
    REQUESTER,
    SIGNING_SECRET,
    BotProcess,
    add_people,
    bot_env,
    running,
)

MB = 1 << 20


@dataclass
class Served:
    """One bot process in HTTP mode, shared by this module's tests."""

    bot: BotProcess
    slack: SlackStandIn
    driver: SlackDriver

    def worker_rss(self) -> int:
        """Resident bytes of the gunicorn worker (the master's only child)."""
        children = Path(f"/proc/{self.bot.proc.pid}/task/{self.bot.proc.pid}/children")
        (worker,) = children.read_text().split()
        for line in Path(f"/proc/{worker}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def still_serves(self) -> None:
        """A genuine slash command is answered and opens the modal."""
        mark = self.slack.mark()
        ack = self.driver.slash_command(REQUESTER, "add", channel_id=ORIGIN)
        assert ack.status == 200 and ack.elapsed < 3.0
        assert self.slack.wait_for("views.open", after=mark).ok


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Start the stand-ins and one ``run`` process; SIGTERM it after the module."""
    workdir = tmp_path_factory.mktemp("bounded")
    with SlackStandIn(bot_token=BOT_TOKEN) as slack, Auth0Sandbox() as auth0:
        add_people(slack)
        auth0.add_hook("Client Credentials Exchange")
        env = bot_env(slack, auth0, f"sqlite:///{workdir / 'bot.db'}")
        with running(env, workdir) as bot:
            with SlackDriver(slack, bot.events_url, SIGNING_SECRET) as driver:
                yield Served(bot, slack, driver)
            assert bot.stop() == 0


def _connect(served: Served) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", served.bot.port), timeout=30)
    return sock


def _head(length: int | None = None, chunked: bool = False) -> bytes:
    lines = ["POST /slack/events HTTP/1.1", "Host: 127.0.0.1"]
    lines.append("Content-Type: application/x-www-form-urlencoded")
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def _pour(sock: socket.socket, megabytes: int) -> None:
    """Send ``megabytes`` of body as fast as the server takes it, until it hangs up."""
    block = b"x" * MB
    try:
        for _ in range(megabytes):
            sock.sendall(block)
    except OSError:
        pass  # the server answered and closed: what we want


def test_bodies_over_the_cap_get_413_unread_and_memory_stays_flat(served: Served) -> None:
    """Four 128 MB bodies are answered 413 as soon as their headers arrive; the worker's
    memory does not grow with them."""
    before = served.worker_rss()
    for _ in range(4):
        sock = _connect(served)
        sock.sendall(_head(128 * MB))
        pouring = threading.Thread(target=_pour, args=(sock, 128))
        started = time.monotonic()
        pouring.start()
        answer = _answer(sock)
        elapsed = time.monotonic() - started
        pouring.join(timeout=30)
        sock.close()
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert elapsed < 3.0
    assert served.worker_rss() - before < 16 * MB
    served.still_serves()


def test_a_chunked_body_over_the_cap_gets_413(served: Served) -> None:
    """Without a length, the body is read up to the cap and no further."""
    sock = _connect(served)
    sock.sendall(_head(chunked=True))
    chunk = b"x" * MB
    try:
        for _ in range(3):
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
    except OSError:
        pass
    assert _answer(sock).startswith(b"HTTP/1.1 413")
    sock.close()
    served.still_serves()


def test_a_signed_1_mb_slash_command_is_answered_at_once(served: Served) -> None:
    """A 1 MB command text (under the cap) is refused within Slack's 3 s, never echoed."""
    fields = served.driver.slash_command_fields(REQUESTER, "add " + "x" * 1_000_000)
    body = urlencode(fields).encode()
    assert len(body) < MAX_BODY
    ack = served.driver.post_signed(body)
    assert ack.status == 200 and ack.elapsed < 3.0  # Slack's deadline
    assert "did not run that" in ack.text and "xxxx" not in ack.text
    served.still_serves()


def _cut_off_within(sock: socket.socket, seconds: float) -> float:
    """Seconds until the server closed ``sock`` (which sends nothing more meanwhile)."""
    started = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        raise AssertionError(f"still open after {seconds} s") from None
    except ConnectionResetError:
        pass
    return time.monotonic() - started


def test_trickled_headers_and_bodies_lose_their_connection_not_a_thread(served: Served) -> None:
    """Twenty clients (more than the worker's threads) trickle headers or a chunked body a
    byte at a time: each is cut off by its deadline, then the bot serves as before."""
    stop = threading.Event()
    socks: list[socket.socket] = []

    def trickle(sock: socket.socket, head: bytes) -> None:
        try:
            sock.sendall(head)
            while not stop.wait(0.5):
                sock.sendall(b"x")  # a header line (or a chunk) that never ends
        except OSError:
            return

    threads = []
    for i in range(20):
        sock = _connect(served)
        head = b"POST /slack/events HTTP/1.1\r\nHost: x\r\nX-Slow: " if i % 2 else b""
        if not head:
            head = _head(chunked=True) + b"100\r\n"
        socks.append(sock)
        threads.append(threading.Thread(target=trickle, args=(sock, head), daemon=True))
    for thread in threads:
        thread.start()
    limit = HEADER_TIMEOUT + BODY_TIMEOUT + 5
    try:
        waits = [_cut_off_within(sock, limit) for sock in socks]
    finally:
        stop.set()
        for sock in socks:
            sock.close()
    assert max(waits) < limit
    served.still_serves()
    assert httpx.get(f"{served.bot.url}/healthz", timeout=5).status_code == 200


def test_a_guarded_socket_is_shut_at_its_deadline_unless_released() -> None:
    """The deadline wakes a blocked read with end-of-file; a released socket is left alone,
    and extending moves the deadline."""
    deadlines = Deadlines()
    cut, cut_peer = socket.socketpair()
    kept, kept_peer = socket.socketpair()
    started = time.monotonic()
    deadlines.guard(cut, 0.3)
    deadlines.extend(0.6)
    assert cut.recv(1) == b""  # woken by the shutdown, not by the peer
    assert 0.5 < time.monotonic() - started < 5.0
    deadlines.guard(kept, 0.2)
    deadlines.release()
    kept.settimeout(0.6)
    with pytest.raises(TimeoutError):
        kept.recv(1)
    for sock in (cut, cut_peer, kept, kept_peer):
        sock.close()
