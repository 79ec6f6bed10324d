"""The audit chain under concurrent writers: many submissions at once over HTTP, one chain."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from bot.db import audit
from bot.db.audit import AuditEvent
from bot.db.models import SecretRequest
from tests.harness.inprocess import running_bot

SUBMISSIONS = 16  # the hook holds one secret; Auth0 allows 20


def test_parallel_submissions_and_appends_leave_one_unbroken_chain(db_url: str) -> None:
    """Sixteen submissions acked at once, beside direct appends from other threads, are all
    stored, each audited once, and the trail verifies from the first record to the last."""
    with running_bot(db_url) as bot:
        views = [bot.open_form() for _ in range(SUBMISSIONS)]
        hook = bot.hook_option()
        start = threading.Barrier(SUBMISSIONS + 4)

        def submit(n: int) -> int:
            start.wait()
            ack = bot.submit(views[n], name=f"PARALLEL_{n:02d}", value=f"value-{n}-0123", hook=hook)
            return int(ack.status) if not ack.body else -1

        def deny(n: int) -> None:
            start.wait()
            for i in range(10):
                bot.store.audit(AuditEvent("request.denied", actor=f"U{n}", outcome=str(i)))

        with ThreadPoolExecutor(SUBMISSIONS + 4) as pool:
            denials = [pool.submit(deny, n) for n in range(4)]
            acks = list(pool.map(submit, range(SUBMISSIONS)))
            for future in denials:
                future.result()
        assert acks == [200] * SUBMISSIONS
        trail = bot.audit()
        with bot.store.session() as session:
            result = audit.verify(session, bot.store.chain)
            stored = session.query(SecretRequest).count()
    assert result.broken_at is None, result.problem
    assert result.checked == len(trail) == result.keyed  # each HMAC checked with the key
    # Lines print after their commits, in chain order, none missing.
    assert [r["id"] for r in trail] == list(range(1, len(trail) + 1))
    submitted = {r["secret_name"] for r in trail if r["event"] == "request.submitted"}
    assert submitted == {f"PARALLEL_{n:02d}" for n in range(SUBMISSIONS)}
    assert stored == SUBMISSIONS
    assert sum(r["event"] == "request.denied" for r in trail) == 40
