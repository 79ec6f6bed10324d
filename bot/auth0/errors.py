"""Errors the Auth0 client raises, one typed tree whose messages never carry a secret.

Auth0Error                   reason (audit ``outcome``)
 ├── HookNotFound            hook_not_found
 ├── SecretConflict          conflict
 ├── SecretNotFound          secret_not_found
 ├── HookFull                hook_full
 ├── InsufficientScope       insufficient_scope   (.scope)
 ├── ActionNotFound          action_not_found
 ├── ActionFull              action_full
 ├── DraftNotDeployed        draft_not_deployed
 ├── BuildFailed             build_failed
 ├── DeployFailed            deploy_failed
 ├── ConcurrentEdit          concurrent_edit
 ├── HooksUnavailable        hooks_unavailable
 ├── RateLimited             rate_limited         (.retry_at)
 ├── Auth0Unavailable        auth0_unavailable
 │    └── OutcomeUnknown     auth0_unavailable    (a write may have landed: read back first)
 ├── InvalidRequest          invalid_request      (.error_code)
 └── AuthenticationFailed    auth_failed

Messages are written for the people in Slack. They are built only from fixed text,
secret names, scopes and Auth0 error codes: never from a value, a token, the client
secret or Auth0's free-text message (which may quote the payload it rejected).
"""

from __future__ import annotations

import re
from typing import ClassVar

from bot.limits import MAX_SECRETS_PER_HOOK

_EXPECTED_SCOPES = re.compile(r"expected any of:\s*(?P<scopes>.+)$", re.IGNORECASE)


class Auth0Error(Exception):
    """Base of every error the Auth0 client raises; ``reason`` is a stable code."""

    reason: ClassVar[str] = "auth0_error"
    default_message: ClassVar[str] = "the Auth0 Management API call failed"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class HookNotFound(Auth0Error):
    """The hook id does not exist on the tenant."""

    reason = "hook_not_found"
    default_message = "the hook does not exist in Auth0 (it may have been deleted)"


class SecretConflict(Auth0Error):
    """POST was refused because a secret with that name already exists."""

    reason = "conflict"
    default_message = "the hook already has a secret with that name"


class SecretNotFound(Auth0Error):
    """PATCH or DELETE named a secret the hook does not have."""

    reason = "secret_not_found"
    default_message = "the hook has no secret with that name"


class HookFull(Auth0Error):
    """The hook would go over Auth0's cap on secrets per hook."""

    reason = "hook_full"
    default_message = f"the hook already has {MAX_SECRETS_PER_HOOK} secrets, Auth0's maximum"


class InsufficientScope(Auth0Error):
    """The access token lacks the scope the operation needs."""

    reason = "insufficient_scope"

    def __init__(self, scope: str, message: str | None = None) -> None:
        self.scope = scope
        super().__init__(
            message
            or f"the Auth0 application lacks the `{scope}` scope: grant it in "
            "Auth0 Dashboard → Applications → APIs"
        )

    @classmethod
    def from_auth0_message(cls, auth0_message: str, fallback_scope: str) -> InsufficientScope:
        """Name the scope Auth0 asked for ("expected any of: a,b"), else the fallback."""
        match = _EXPECTED_SCOPES.search(auth0_message)
        if match is None:
            return cls(fallback_scope)
        scopes = [s for s in re.split(r"[\s,]+", match["scopes"]) if s]
        return cls(" or ".join(scopes) if scopes else fallback_scope)


class HooksUnavailable(Auth0Error):
    """Hooks are switched off, deprecated or gone on this tenant."""

    reason = "hooks_unavailable"
    default_message = (
        "Auth0 Hooks are disabled or retired on this tenant: the secret has to live in an "
        "Action instead"
    )


class RateLimited(Auth0Error):
    """Auth0 kept answering 429 for longer than the client may wait."""

    reason = "rate_limited"
    default_message = "Auth0's rate limit was reached: try again in a minute"

    def __init__(self, retry_at: float | None = None, message: str | None = None) -> None:
        self.retry_at = retry_at
        super().__init__(message)


class Auth0Unavailable(Auth0Error):
    """Timeouts, 5xx answers or dropped connections outlasted the retries."""

    reason = "auth0_unavailable"
    default_message = "Auth0 did not answer in time or had an internal error: try again shortly"


class InvalidRequest(Auth0Error):
    """Auth0 (or the client, before sending) refused the request as malformed."""

    reason = "invalid_request"
    default_message = "Auth0 rejected the request as invalid"

    def __init__(self, message: str | None = None, error_code: str | None = None) -> None:
        self.error_code = error_code
        super().__init__(message)


class AuthenticationFailed(Auth0Error):
    """The token endpoint refused the client credentials, or the API refused the token."""

    reason = "auth_failed"
    default_message = (
        "Auth0 refused the bot's client credentials: check AUTH0_CLIENT_ID, "
        "AUTH0_CLIENT_SECRET and the application's grant for the Management API"
    )


class OutcomeUnknown(Auth0Unavailable):
    """A write got no usable answer: it may have been applied, so read back before retrying."""

    default_message = (
        "Auth0 lost its answer to the change: it may or may not have been applied, and the "
        "bot reads the action back before doing anything else"
    )


class ActionNotFound(Auth0Error):
    """The action id does not exist on the tenant."""

    reason = "action_not_found"
    default_message = "the action does not exist in Auth0 (it may have been deleted)"


class ActionFull(Auth0Error):
    """The action would go over Auth0's cap of 30 secrets."""

    reason = "action_full"
    default_message = "the action already has 30 secrets, Auth0's maximum"


class DraftNotDeployed(Auth0Error):
    """The action's draft holds changes nobody deployed: deploying would publish them too."""

    reason = "draft_not_deployed"
    default_message = (
        "the action has changes in Auth0 that are not deployed yet; deploying this secret "
        "would publish them too, so deploy or discard them in the Auth0 Dashboard first"
    )


class BuildFailed(Auth0Error):
    """Auth0 could not build the action's draft, so it cannot be deployed."""

    reason = "build_failed"
    default_message = (
        "Auth0 could not build the action's draft (its code or dependencies are broken): "
        "nothing was deployed; fix the action in the Auth0 Dashboard"
    )


class DeployFailed(Auth0Error):
    """The draft was not deployed, or did not start running, in the time allowed."""

    reason = "deploy_failed"
    default_message = "Auth0 did not deploy the action in time: check it in the Auth0 Dashboard"


class ConcurrentEdit(Auth0Error):
    """Someone else changed the action's secrets between the bot's read and its PATCH."""

    reason = "concurrent_edit"
    default_message = (
        "someone changed the action's secrets in Auth0 at the same time: nothing was "
        "deployed; look at the action's secrets before trying again"
    )
