"""Errors a target raises: Auth0's refusals translated into domain outcomes at the seam.

TargetError                  reason: the audit ``outcome`` (CONTRACT §5), e.g. ``conflict``,
 │                           ``hook_full``, ``rate_limited``, ``draft_not_deployed``, ...
 ├── TargetGone              ``hook_not_found`` / ``action_not_found``: the target was deleted
 └── TargetUnavailable       ``auth0_unavailable``: no answer, so a write may have landed

The reason codes and the messages (written for the people in Slack, never carrying a value)
are the vendor error's own, so that what people read and what the audit records stay the same.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from bot.auth0.errors import ActionNotFound, Auth0Error, Auth0Unavailable, HookNotFound

P = ParamSpec("P")
R = TypeVar("R")


class TargetError(Exception):
    """A target refused a read or a change, or could not answer; ``reason`` is a stable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return self.message


class TargetGone(TargetError):
    """The hook or action no longer exists (cached lists of targets should drop it)."""


class TargetUnavailable(TargetError):
    """Auth0 did not answer in time: a change may or may not have landed, so read back."""


def translate(error: Auth0Error) -> TargetError:
    """The domain outcome of a vendor error, with its reason and message unchanged."""
    if isinstance(error, HookNotFound | ActionNotFound):
        return TargetGone(error.reason, error.message)
    if isinstance(error, Auth0Unavailable):
        return TargetUnavailable(error.reason, error.message)
    return TargetError(error.reason, error.message)


def translated(method: Callable[P, R]) -> Callable[P, R]:
    """Wrap a target's method so that Auth0's errors leave it as ``TargetError``s."""

    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except Auth0Error as error:
            raise translate(error) from error

    return call
