"""The process's background parts as a whole: waiting until idle, stopping, the target reader."""

from __future__ import annotations

import time

from bot.slack.services import Services


def wait_idle(services: Services, timeout: float = 30.0) -> bool:
    """Wait until background work, prefetch reads and the messages due now have finished
    (including work and messages they queued in turn)."""
    deadline = time.monotonic() + timeout
    background = services.background
    prefetches = [site.prefetch for site in services.fleet]
    delivery = services.next_steps.delivery
    while time.monotonic() < deadline:
        if not background.wait_idle(max(0.0, deadline - time.monotonic())):
            return False
        for prefetch in prefetches:
            if not prefetch.wait_idle(max(0.0, deadline - time.monotonic())):
                return False
        # Work that finishes while the outbox is looked at may have queued a message:
        # idle only if nothing ran on either side of that look (a refresh read may have
        # started since the wait above, too).
        if (
            background.idle()
            and delivery.idle()
            and background.idle()
            and all(prefetch.idle() for prefetch in prefetches)
        ):
            return True
        time.sleep(0.01)
    return False


def shutdown(services: Services, timeout: float = 30.0) -> bool:
    """Let queued work and due messages finish (within ``timeout``), then stop; False if
    cut off (undelivered messages stay queued for the next start)."""
    finished = wait_idle(services, timeout)
    for site in services.fleet:
        site.prefetch.close()
    services.background.shutdown(timeout if finished else 0)
    services.next_steps.delivery.stop()
    for site in services.fleet:
        site.catalog.close()
        site.targets.close()
    return finished
