"""The bot's services wired together, and the slow work that runs after each ack."""

from __future__ import annotations

import contextvars
import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ParamSpec, TypeVar

from slack_bolt import Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.auth0.client import Auth0Client, Hook
from bot.auth0.errors import Auth0Error, HookNotFound
from bot.catalog import HookCatalog
from bot.logs import get_logger
from bot.models import SecretRequest, State
from bot.notify import Notifier
from bot.policy import Policy
from bot.workflow import Outcome, Result, Workflow

log = get_logger(__name__)
P = ParamSpec("P")
T = TypeVar("T")
# Checks that need Auth0 before a view submission's ack must finish well inside Slack's 3 s.
ACK_DEADLINE = 1.5
# A trigger_id dies about 3 s after the click or command.
TRIGGER_SECONDS = 3
# Younger requests may still be posting their approval message from the submit itself.
REPOST_AFTER = timedelta(minutes=1)


class ContextExecutor(ThreadPoolExecutor):
    """A thread pool that carries the submitter's contextvars (request id, user) into the task."""

    def submit(self, fn: Callable[P, Any], /, *args: P.args, **kwargs: P.kwargs) -> Future[Any]:
        """Run ``fn`` in the pool inside a copy of the caller's context."""
        context = contextvars.copy_context()
        return super().submit(context.run, fn, *args, **kwargs)  # type: ignore[arg-type]  # Context.run is generic over its own ParamSpec


@dataclass(frozen=True)
class RemoteCheck:
    """What Auth0 said about the chosen hook, or that it did not answer in time."""

    hook: Hook | None
    names: list[str] | None
    error: Auth0Error | None = None


@dataclass
class Services:
    """Everything listeners need, built once by ``create_app``."""

    workflow: Workflow
    policy: Policy
    notifier: Notifier
    catalog: HookCatalog
    auth0: Auth0Client
    team_id: str
    require_reason: bool
    # Three pools, so that no kind of work waits behind another: Slack follow-ups after an
    # ack (a modal to open before its trigger dies), Auth0 reads a pending ack waits for, and
    # applies, which may queue for minutes behind Auth0's rate limit.
    executor: ContextExecutor = field(default_factory=lambda: _pool(16, "ui"))
    lookups: ContextExecutor = field(default_factory=lambda: _pool(8, "lookup"))
    appliers: ContextExecutor = field(default_factory=lambda: _pool(8, "apply"))
    _pending: set[Future[Any]] = field(default_factory=set)
    _pending_lock: threading.Lock = field(default_factory=threading.Lock)

    def background(self, fn: Callable[P, Any], /, *args: P.args, **kwargs: P.kwargs) -> None:
        """Run slow work after the ack; failures are logged with their traceback."""
        self._track(self.executor.submit(fn, *args, **kwargs))

    def apply_later(self, request_id: str, reconciling: bool = False) -> None:
        """Apply in the appliers' pool, tracked like other background work."""
        self._track(self.appliers.submit(self.apply, request_id, reconciling))

    def _track(self, future: Future[Any]) -> None:
        with self._pending_lock:
            self._pending.add(future)
        future.add_done_callback(self._done)

    def shutdown(self, timeout: float = 30.0) -> bool:
        """Let queued work finish (within ``timeout``), then stop every pool; False if cut off."""
        finished = self.wait_idle(timeout)
        for pool in (self.executor, self.lookups, self.appliers):
            # Idle pools are joined; after a timeout, waiting longer would block the shutdown.
            pool.shutdown(wait=finished, cancel_futures=True)
        self.catalog.close()
        return finished

    def _done(self, future: Future[Any]) -> None:
        with self._pending_lock:
            self._pending.discard(future)
        _log_failure(future)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until background work, including work it queued in turn, has finished."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._pending_lock:
                pending = list(self._pending)
            if not pending:
                return True
            for future in pending:
                try:
                    future.result(timeout=max(0.0, deadline - time.monotonic()))
                except Exception:  # noqa: S112 - failures were logged by _done
                    continue
        return False

    def check_remote(self, hook_id: str) -> RemoteCheck:
        """The hook and its secret names, if Auth0 answers within the ack deadline."""
        future = self.lookups.submit(self._read_hook, hook_id)
        try:
            hook, names = future.result(timeout=ACK_DEADLINE)
        except TimeoutError:
            return RemoteCheck(None, None)
        except Auth0Error as error:
            return RemoteCheck(None, None, error)
        return RemoteCheck(hook, names)

    def _read_hook(self, hook_id: str) -> tuple[Hook, list[str]]:
        # The names call answers 404 for a deleted hook; the hook itself usually comes from
        # the list the picker just loaded, saving a call against Auth0's rate limit.
        names = self.auth0.get_secret_names(hook_id)
        return self.catalog.cached(hook_id) or self.auth0.get_hook(hook_id), names

    def after_submit(self, request: SecretRequest) -> None:
        """Ask for approval, or apply at once when the policy needs none."""
        if request.state == State.APPROVED:
            self.apply_later(request.id)
        else:
            self.notifier.request_waiting(request)

    def after_decision(self, result: Result) -> None:
        """Apply an approval, or tell people about a rejection or expiry."""
        request = result.request
        if request is None:
            return
        if result.outcome is Outcome.APPROVED:
            self.apply_later(request.id)
        elif result.outcome is Outcome.REJECTED:
            self.notifier.rejected(request)
        elif result.outcome is Outcome.EXPIRED:
            self.notifier.expired(request)

    def apply(self, request_id: str, reconciling: bool = False) -> None:
        """Apply once and tell everyone the outcome."""
        result = self.workflow.apply(request_id, reconciling=reconciling)
        self.report(result)

    def report(self, result: Result) -> None:
        """Tell people what an apply did."""
        if result.request is None:
            return
        if result.outcome is Outcome.APPLIED:
            self.notifier.applied(result.request)
        elif result.outcome is Outcome.FAILED:
            if isinstance(result.error, HookNotFound):
                self.catalog.invalidate()
            self.notifier.failed(result.request, result.error)

    def sweep(self) -> None:
        """Expire overdue requests and finish stranded applies (run periodically and on start)."""
        for request in self.workflow.expire_due():
            _logged(self.notifier.expired, request)
        # Posting failed at submit (the bot was not in the approval channel yet): try again.
        for request in self.workflow.store.unposted(self.workflow.now() - REPOST_AFTER):
            _logged(self.notifier.post_approval, request)
        for result in self.workflow.reconcile():
            _logged(self.report, result)


def open_modal(
    client: WebClient, respond: Respond, trigger_id: str, view: dict[str, Any]
) -> dict[str, Any] | None:
    """Open a modal and return it; when Slack refuses (rate limit, stale trigger), say so."""
    once = _one_try(client.token, client.base_url)
    try:
        opened: dict[str, Any] = once.views_open(trigger_id=trigger_id, view=view)["view"]
    except (SlackApiError, SlackClientError, OSError) as error:
        code = error.response.get("error") if isinstance(error, SlackApiError) else "timeout"
        log.warning("views.open refused", error=code)
        respond(
            text=f":warning: Slack did not open the form ({code}). Please try again.",
            response_type="ephemeral",
            replace_original=False,
        )
        return None
    return opened


@functools.lru_cache(maxsize=8)
def _one_try(token: str | None, base_url: str) -> WebClient:
    """A client that tries once, with a short timeout: a retry that sleeps out a rate limit
    outlives the trigger. Built once per token, not per modal (WebClient is thread-safe)."""
    return WebClient(token=token, base_url=base_url, timeout=TRIGGER_SECONDS)


def describe_state(request: SecretRequest) -> str:
    """A short account of a decided request, for whoever lost the race."""
    who = f" by <@{request.decided_by}>" if request.decided_by else ""
    return {
        State.APPROVED: f"already approved{who} and being applied",
        State.APPLIED: f"already approved{who} and applied",
        State.FAILED: f"already approved{who}; applying it failed ({request.failure_reason})",
        State.REJECTED: f"already rejected{who}",
        State.EXPIRED: "expired before anyone decided",
        State.PENDING: "still pending",
    }[State(request.state)]


def _logged(step: Callable[[T], object], item: T) -> None:
    """One step of a sweep; a failure is logged and the sweep goes on."""
    try:
        step(item)
    except Exception:
        log.exception("sweep step failed")


def _pool(workers: int, name: str) -> ContextExecutor:
    return ContextExecutor(max_workers=workers, thread_name_prefix=name)


def _log_failure(future: Future[Any]) -> None:
    error = future.exception()
    if error is not None:
        log.error("background task failed", exc_info=error)
