"""Group commit: this process's write transactions share one database transaction and fsync."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from bot.logs import get_logger

log = get_logger(__name__)

# A batch's first member waits for the others' work (a few ms each) and one commit: 16 shares
# an fsync widely and keeps that wait within tens of milliseconds.
BATCH_LIMIT = 16


@dataclass
class _Batch:
    """One open database transaction that members join one after another."""

    session: Session
    members: int = 0
    committed: list[Callable[[], None]] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class GroupCommit:
    """Writers take turns in one open transaction, each after the first inside a savepoint,
    and the last of a run commits for all of them.

    A durable commit costs an fsync (about 7 ms on a shared disk), and every write goes through
    one writer (the audit hash chain; SQLite allows one anyway). So a writer that finds others
    waiting leaves its work in the open transaction for the next one, and returns only once
    a later member committed it: one fsync for a batch. A member whose work fails rolls back
    to its savepoint (the first, the whole transaction, which holds only its work); the
    others' work stays. If the commit fails, every member of the batch
    gets the error: nothing was made durable for any of them.
    """

    def __init__(self, sessions: sessionmaker[Session], limit: int = BATCH_LIMIT) -> None:
        self._sessions = sessions
        self._limit = limit
        self._turn = threading.Lock()  # one member at a time, across the batch's commit too
        self._count = threading.Lock()
        self._waiting = 0
        self._batch: _Batch | None = None

    @property
    def waiting(self) -> int:
        """Writers queued for their turn right now (they join the open transaction)."""
        with self._count:
            return self._waiting

    @contextmanager
    def member(self, on_commit: Callable[[], None] | None = None) -> Iterator[Session]:
        """A session inside the shared transaction; returns once the work is committed.
        ``on_commit`` runs after the commit, in the order members wrote, before any later
        batch commits (audit lines print in chain order)."""
        with self._count:
            self._waiting += 1
        self._turn.acquire()
        with self._count:
            self._waiting -= 1
        batch = self._join()
        # The first member holds nobody else's work: its failure rolls the whole transaction
        # back, and the lone writer (the common case) saves a savepoint's two statements.
        first = batch.members == 1
        try:
            with nullcontext() if first else batch.session.begin_nested():
                yield batch.session
                batch.session.flush()  # ORM objects added, as a savepoint's release would
        except BaseException:
            if first:
                self._discard(batch)
            else:
                self._leave(batch)
            raise
        if on_commit is not None:
            batch.committed.append(on_commit)
        self._leave(batch)
        batch.done.wait()
        if batch.error is not None:
            raise batch.error

    def _join(self) -> _Batch:
        if self._batch is None:
            session = self._sessions()
            try:
                session.begin()
            except BaseException:
                session.close()
                self._turn.release()
                raise
            self._batch = _Batch(session)
        self._batch.members += 1
        return self._batch

    def _discard(self, batch: _Batch) -> None:
        """Roll back a batch whose first member failed, and pass the turn on."""
        try:
            self._batch = None
            batch.session.close()
        finally:
            batch.done.set()
            self._turn.release()

    def _leave(self, batch: _Batch) -> None:
        """Hand the open transaction to the next writer, or commit it for the whole batch."""
        try:
            # This member's objects stay as they are (detached), unseen by the next member.
            batch.session.expunge_all()
            with self._count:
                waiting = self._waiting > 0
            # A transaction a failure left unusable is not handed on: its commit fails for all.
            hand_over = waiting and batch.members < self._limit and batch.session.is_active
            if not hand_over:
                self._batch = None
                try:
                    try:
                        batch.session.commit()
                    except BaseException as error:
                        batch.error = error  # close() below rolls back what is left
                    finally:
                        batch.session.close()
                    if batch.error is None:
                        _run_all(batch.committed)
                finally:
                    batch.done.set()  # whatever happened, no member waits for ever
        finally:
            self._turn.release()


def _run_all(callbacks: list[Callable[[], None]]) -> None:
    for callback in callbacks:
        try:
            callback()
        except Exception:  # the rows are committed: one failed print must not hide the others
            log.exception("after-commit step failed")
