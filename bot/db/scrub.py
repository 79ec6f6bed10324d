"""SQLite: the WAL is checkpointed and truncated soon after an erase commits."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from bot.logs import get_logger

log = get_logger(__name__)

# Erases that commit within this long share one checkpoint (an apply erases, then the
# confirmation's outbox row commits right after).
BATCH = 0.2
# A checkpoint that readers hold up is tried again after this, up to TRIES times (each try
# waits up to BUSY_TIMEOUT for the readers and the writer).
RETRY = 0.5
TRIES = 20
BUSY_TIMEOUT_MS = 2000


class WalScrubber:
    """Checkpoints the WAL of a SQLite file with TRUNCATE soon after each ``erased()`` call.

    ``secure_delete`` (set on every connection, see ``bot.db.engine``) zeroes what an erase
    frees in the pages; the WAL still holds the frames written before it (with the value's
    ciphertext) until a checkpoint copies the newer pages into the database file and
    truncates the log to zero bytes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._due = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pending = False  # an erase committed since the last checkpoint began
        self.checkpoints = 0  # completed ones (for tests)

    def erased(self) -> None:
        """An erase committed: checkpoint within a moment (several erases share one)."""
        with self._lock:
            self._pending = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="wal-scrub", daemon=True)
                self._thread.start()
        self._due.set()

    def close(self) -> None:
        """Run a last checkpoint if one is due, and stop (a later erase starts again)."""
        with self._lock:
            self._stopped.set()
            thread, self._thread = self._thread, None
        if thread is not None:
            self._due.set()
            thread.join()
        with self._lock:
            self._stopped.clear()

    def _run(self) -> None:
        while True:
            self._due.wait()
            self._stopped.wait(BATCH)  # gather erases committing right after (not on close)
            self._due.clear()
            with self._lock:
                pending, self._pending = self._pending, False
            if pending:
                self._checkpoint()
            if self._stopped.is_set():
                with self._lock:  # an erase racing close() may have started this thread
                    if self._thread is threading.current_thread():
                        self._thread = None
                return

    def _checkpoint(self) -> None:
        """Truncate the WAL, trying again while readers still use older frames."""
        for _ in range(TRIES):
            try:
                if self._truncate():
                    self.checkpoints += 1
                    return
            except sqlite3.Error:
                log.warning("wal checkpoint failed; trying again")
            if self._stopped.wait(RETRY):  # closing: one last try was made
                return
        log.error("wal checkpoint did not complete: erased values may remain in the WAL")

    def _truncate(self) -> bool:
        """One ``wal_checkpoint(TRUNCATE)``: whether it completed."""
        connection = sqlite3.connect(
            self.path.as_uri() + "?mode=rw", uri=True, timeout=BUSY_TIMEOUT_MS / 1000
        )
        try:
            connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            connection.close()
        return bool(busy == 0)
