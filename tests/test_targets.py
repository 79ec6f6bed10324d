"""The hook target and the token auth against the Auth0 sandbox over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from bot.approvals.states import Kind
from bot.auth0.errors import (
    ActionNotFound,
    Auth0Error,
    HookNotFound,
    OutcomeUnknown,
    RateLimited,
    SecretNotFound,
)
from bot.auth0.transport import Auth0Transport
from bot.targets import Change, HookTarget, NoProgress, TargetKind, Targets
from bot.targets.catalog import HookCatalog
from bot.targets.errors import TargetError, TargetGone, TargetUnavailable, translate
from standins.auth0 import Auth0Sandbox

VALUE = "s3cr3t-target-value"
Seen = list[tuple[str, int | str]]


@pytest.fixture
def sandbox() -> Iterator[Auth0Sandbox]:
    with Auth0Sandbox() as running:
        yield running


@pytest.fixture
def seen() -> Seen:
    return []


@pytest.fixture
def target(sandbox: Auth0Sandbox, seen: Seen) -> Iterator[HookTarget]:
    client = Auth0Transport(
        domain=sandbox.domain,
        client_id=sandbox.client_id,
        client_secret=SecretStr("sandbox-client-secret"),
        base_url=sandbox.url,
        timeout=5.0,
        retry_backoff=0.01,
        observer=lambda op, status, _: seen.append((op, status)),
    )
    catalog = HookCatalog(client)
    yield HookTarget(client, catalog)
    catalog.close()
    client.close()


def change(kind: Kind, hook_id: str, name: str = "API_KEY", value: str | None = VALUE) -> Change:
    return Change(kind, hook_id, name, SecretStr(value) if value is not None else None)


def test_targets_are_found_by_kind(target: HookTarget) -> None:
    """The registry hands out the implementation for a request's target kind."""
    targets = Targets(target)
    assert targets["hook"] is target and targets[TargetKind.HOOK] is target
    assert targets.hooks is target


def test_hook_target_adds_rotates_and_removes(sandbox: Auth0Sandbox, target: HookTarget) -> None:
    """Each kind of change reaches the hook's secrets in Auth0."""
    hook_id = sandbox.add_hook("Target hook")
    target.apply(change(Kind.ADD, hook_id), NoProgress())
    assert sandbox.secrets(hook_id) == {"API_KEY": VALUE}
    target.apply(change(Kind.UPDATE, hook_id, value="rotated-value"), NoProgress())
    assert sandbox.secrets(hook_id) == {"API_KEY": "rotated-value"}
    assert target.secret_names(hook_id) == ["API_KEY"]
    target.apply(change(Kind.REMOVE, hook_id, value=None), NoProgress())
    assert sandbox.secrets(hook_id) == {}


def test_a_change_without_a_value_is_refused_before_auth0(
    sandbox: Auth0Sandbox, target: HookTarget
) -> None:
    """An add or rotation with no value never reaches Auth0."""
    hook_id = sandbox.add_hook("Target hook")
    before = len(sandbox.requests)
    with pytest.raises(ValueError, match="needs a value"):
        target.apply(change(Kind.ADD, hook_id, value=None), NoProgress())
    assert len(sandbox.requests) == before


def test_landed_reads_back_adds_and_removals(sandbox: Auth0Sandbox, target: HookTarget) -> None:
    """After an unknown outcome: an add landed when the name is there, a removal when gone;
    a rotation can't be told from names."""
    hook_id = sandbox.add_hook("Target hook", secrets={"THERE": "x"})
    assert target.landed(change(Kind.ADD, hook_id, "THERE"))
    assert not target.landed(change(Kind.ADD, hook_id, "MISSING"))
    assert target.landed(change(Kind.REMOVE, hook_id, "MISSING", None))
    assert not target.landed(change(Kind.REMOVE, hook_id, "THERE", None))
    assert not target.landed(change(Kind.UPDATE, hook_id, "THERE"))


def test_listing_find_search_and_forget(sandbox: Auth0Sandbox, target: HookTarget) -> None:
    """Hooks are listed from the catalog, found by id or name, reloaded after forget()."""
    first = sandbox.add_hook("Alpha Hook")
    assert [h.id for h in target.listing()] == [first]
    assert target.find("alpha hook") == target.find(first) == target.describe(first)
    second = sandbox.add_hook("Beta Hook")
    assert target.find(second) is None  # the cached list is still fresh
    target.forget()
    assert [h.name for h in target.search("hook", deadline=5.0)] == ["Alpha Hook", "Beta Hook"]


def test_unknown_hooks_and_names_raise_domain_errors(
    sandbox: Auth0Sandbox, target: HookTarget
) -> None:
    """Auth0's errors leave the seam translated, reason and message unchanged: a deleted hook
    is TargetGone (hook_not_found); rotating a name the hook lacks is secret_not_found."""
    hook_id = sandbox.add_hook("Target hook")
    with pytest.raises(TargetError) as lacking:
        target.apply(change(Kind.UPDATE, hook_id, "NOPE"), NoProgress())
    assert isinstance(lacking.value.__cause__, SecretNotFound)
    assert lacking.value.reason == "secret_not_found"
    assert lacking.value.message == lacking.value.__cause__.message
    with pytest.raises(TargetGone) as gone:
        target.secret_names("01HZZZZZZZZZZZZZZZZZZZZZZZ")
    assert isinstance(gone.value.__cause__, HookNotFound)
    assert gone.value.reason == "hook_not_found"


def test_a_refused_token_is_renewed_once_and_both_exchanges_are_observed(
    sandbox: Auth0Sandbox, target: HookTarget, seen: Seen
) -> None:
    """The 401 that makes the token auth renew is an exchange of its own for the observer."""
    hook_id = sandbox.add_hook("Target hook")
    target.secret_names(hook_id)
    sandbox.revoke_tokens()
    seen.clear()
    assert target.secret_names(hook_id) == []
    assert seen == [("get_secrets", 401), ("token", 200), ("get_secrets", 200)]
    assert sandbox.token_requests == 2


@pytest.mark.parametrize(
    ("vendor", "domain", "reason"),
    [
        (HookNotFound(), TargetGone, "hook_not_found"),
        (ActionNotFound(), TargetGone, "action_not_found"),
        (OutcomeUnknown(), TargetUnavailable, "auth0_unavailable"),
        (RateLimited(retry_at=1.0), TargetError, "rate_limited"),
    ],
)
def test_vendor_errors_translate_into_domain_outcomes_keeping_reason_and_text(
    vendor: Auth0Error, domain: type[TargetError], reason: str
) -> None:
    """Each Auth0 error becomes its domain outcome; the audit reason and the text people read
    are the vendor's own."""
    translated = translate(vendor)
    assert type(translated) is domain
    assert (translated.reason, translated.message) == (reason, vendor.message)
    assert str(translated) == str(vendor)
