"""Second review of issue 24, unit level: each tenant's access token stays known to the log
redactor; a client secret pasted where a variable's name goes is never printed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from bot.approvals.policy_file import PolicyError, load
from bot.approvals.results import Outcome
from bot.approvals.states import State
from bot.auth0.transport import Auth0Transport
from bot.logs import SECRETS
from tests.unit.test_approving import TWO_OF, Book
from tests.unit.test_workflow import World, draft, world


def _tenant(domain: str, token: str) -> Auth0Transport:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/oauth/token"
        return httpx.Response(200, json={"access_token": token, "expires_in": 86400})

    return Auth0Transport(
        domain=domain,
        client_id="id",
        client_secret=SecretStr(f"{domain}-client-secret"),
        transport=httpx.MockTransport(answer),
    )


def test_every_tenant_s_access_token_stays_redacted() -> None:
    """Two tenants' clients each fetch a token (opaque here: no JWT shape to fall back on).
    Each stays known to the redactor: dev's fetch does not make prod's printable, as one slot
    shared by every tenant did."""
    tokens = {
        "prod.auth0.local": "prod-opaque-token-0123",
        "dev.auth0.local": "dev-opaque-token-0123",
    }
    clients = [_tenant(domain, token) for domain, token in tokens.items()]
    try:
        for client in clients:
            client.token_scopes()  # fetches the tenant's token
        line = " ".join(tokens.values())
        scrubbed = SECRETS.scrub(line)
        for token in tokens.values():
            assert token not in scrubbed, scrubbed
    finally:
        for client in clients:
            client.close()


# What an operator may paste by mistake where the variable's name goes: an Auth0 client secret
# (letters and digits only, so that it also reads as a variable's name).
PASTED_SECRET = "Yf2ZnK3oX8cP1qR7sT4uV6wA9bD0eG5hQm7Lp2Xc9Vb4Nz1Ks8Dj3Hf6Gt5Wr0Ya"
PASTED = """
[tenants.prod]
domain = "acme.eu.auth0.com"
client_id = "client"
client_secret_env = "{env}"

[[rules]]
tenant = "prod"
requesters = ["U0RITA"]
approvals = 0
"""


def test_a_client_secret_pasted_as_the_variable_s_name_is_not_printed(tmp_path: Path) -> None:
    """``client_secret_env = "<the secret itself>"`` names no variable that is set: the
    problem line names the place, never the text (``run``, ``check`` and ``policy`` print it
    to stderr, before any redactor could know it); a conventional name is still shown."""
    path = tmp_path / "policy.toml"
    path.write_text(PASTED.format(env=PASTED_SECRET))
    with pytest.raises(PolicyError) as caught:
        load(path, {})
    (line,) = caught.value.problems
    assert PASTED_SECRET not in line and PASTED_SECRET[:16] not in line
    assert line.startswith("HOOK_SECRET_POLICY_FILE: tenants.prod.client_secret_env: ")
    path.write_text(PASTED.format(env="AUTH0_PROD_CLIENT_SECRET"))
    with pytest.raises(PolicyError) as caught:
        load(path, {})
    assert "the variable AUTH0_PROD_CLIENT_SECRET is unset or empty" in caught.value.problems[0]


def test_a_rule_s_ttl_decides_its_requests_expiry_and_without_one_the_default(
    sqlite_url: str,
) -> None:
    """CONTRACT §6: a rule's ``ttl`` is its requests' life; a rule without one leaves
    ``HOOK_SECRET_REQUEST_TTL`` (here one hour) as the default; each expires on its own."""
    for w in world(sqlite_url, approvals=2):
        book = Book(replace(TWO_OF, ttl=600))
        w.workflow.rules = w.workflow.approving.rules = book
        short = w.workflow.submit(draft(name="SHORT"))
        book.rule = TWO_OF
        default = w.workflow.submit(draft(name="DEFAULT"))
        assert short.expires_at == w.clock() + timedelta(seconds=600)
        assert default.expires_at == w.clock() + timedelta(hours=1)
        w.clock.advance(seconds=601)
        assert [r.id for r in w.workflow.expire_due()] == [short.id]
        w.clock.advance(hours=1)
        assert [r.id for r in w.workflow.expire_due()] == [default.id]


@pytest.fixture
def two(sqlite_url: str) -> Iterator[World]:
    """Two approvals needed, of U0A, U0B and U0C; a TTL of one hour."""
    for found in world(sqlite_url, approvals=2):
        found.workflow.rules = found.workflow.approving.rules = Book(TWO_OF)
        yield found


def test_an_approval_landing_as_the_ttl_passes_expires_the_request(two: World) -> None:
    """The last approval is submitted; the TTL passes between the check that the request is
    still live and the transaction that would count it. Nothing is counted (the database's
    clock says it is over), and the approver is told it expired, the request expiring then
    (value erased, ``request.expired``), not "it was still pending" with the request left for
    the sweep."""
    request = two.workflow.submit(draft())
    assert two.workflow.decide(request.id, "U0A", True, None).outcome is Outcome.COUNTED
    screen = two.workflow.approving._precheck

    def late(*args: Any) -> Outcome | None:
        two.clock.advance(hours=2)  # past the TTL (one hour) while the approval is checked
        return screen(*args)

    two.workflow.approving._precheck = late  # type: ignore[method-assign,assignment]
    result = two.workflow.decide(request.id, "U0B", True, None)
    assert result.outcome is Outcome.EXPIRED, result
    assert result.request is not None and result.request.state == State.EXPIRED
    assert result.request.value_ciphertext is None
    assert [a.approver for a in two.store.approvals_of(request.id)] == ["U0A"]
    assert two.events().count("request.expired") == 1
    assert "request.approved" not in two.events()
