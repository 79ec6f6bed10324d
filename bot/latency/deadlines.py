"""Deadlines on client sockets: a request that has not arrived in time is cut off."""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time


class Deadlines:
    """One thread that shuts down sockets whose deadline passed.

    A shut-down socket wakes the worker thread blocked reading it (with no data), so that a
    client trickling its headers or body can't hold a worker thread for longer than the
    deadline; ``socket.settimeout`` would only bound each read, not the request.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, socket.socket]] = []
        self._armed: dict[int, float] = {}
        self._tokens = itertools.count()
        self._thread: threading.Thread | None = None
        self._local = threading.local()

    def guard(self, sock: socket.socket, seconds: float) -> None:
        """Cut ``sock`` off in ``seconds`` unless this thread ``extend``s or ``release``s it."""
        self.release()
        deadline = time.monotonic() + seconds
        token = next(self._tokens)
        with self._cond:
            self._armed[token] = deadline
            # The thread sleeps until the earliest deadline: wake it only for an earlier one
            # (waking it on every request costs each request a thread switch).
            earlier = not self._heap or deadline < self._heap[0][0]
            heapq.heappush(self._heap, (deadline, token, sock))
            if self._thread is None:
                # Started on first use: gunicorn forks workers, and threads don't survive a fork.
                self._thread = threading.Thread(target=self._run, name="deadlines", daemon=True)
                self._thread.start()
            if earlier:
                self._cond.notify()
        self._local.guarded = (token, sock)

    def extend(self, seconds: float) -> None:
        """A new deadline, ``seconds`` from now, for the socket this thread guards (if any)."""
        guarded = getattr(self._local, "guarded", None)
        if guarded is not None:
            self.guard(guarded[1], seconds)

    def release(self) -> None:
        """No deadline any more for the socket this thread guards."""
        guarded = getattr(self._local, "guarded", None)
        self._local.guarded = None
        if guarded is not None:
            with self._cond:
                self._armed.pop(guarded[0], None)

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    deadline, token, sock = heapq.heappop(self._heap)
                    if self._armed.get(token) == deadline:
                        del self._armed[token]
                        _cut(sock)
                self._cond.wait(self._heap[0][0] - now if self._heap else None)


def _cut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the client or the server
        sock.shutdown(socket.SHUT_RDWR)
