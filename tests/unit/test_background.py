"""``Background``: work after the ack, drained on shutdown, carrying the caller's context."""

from __future__ import annotations

import contextvars
import threading

from bot.serve.background import Background

WHO: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


def test_wait_idle_includes_work_queued_by_work() -> None:
    """Work that queues more work (an approval starting an apply) is waited for too."""
    background, done = Background(), list[str]()

    def second() -> None:
        done.append("apply")

    def first() -> None:
        done.append("decision")
        background.apply(second)

    background.run(first)
    assert background.wait_idle(5)
    assert done == ["decision", "apply"]
    assert background.shutdown(1)


def test_a_failure_is_logged_not_raised_and_the_rest_runs() -> None:
    """One failing task does not stop the others or the wait."""
    background, done = Background(), list[str]()

    def boom() -> None:
        raise RuntimeError("boom")

    background.run(boom)
    background.run(done.append, "after")
    assert background.wait_idle(5)
    assert done == ["after"]
    assert background.shutdown(1)


def test_tasks_carry_the_submitters_context() -> None:
    """Contextvars bound by the listener (user, request id) are seen inside the task."""
    background, seen = Background(), list[str]()
    WHO.set("U0REQ")
    background.run(lambda: seen.append(WHO.get()))
    assert background.lookup(WHO.get).result(timeout=5) == "U0REQ"
    assert background.wait_idle(5)
    assert seen == ["U0REQ"]
    assert background.shutdown(1)


def test_shutdown_says_when_it_was_cut_off() -> None:
    """Work still running past the timeout makes shutdown answer False without waiting."""
    background, release = Background(), threading.Event()
    background.apply(release.wait, 5)
    assert background.shutdown(0.1) is False
    release.set()
