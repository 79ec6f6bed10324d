"""Second review of issue 24, unit level: each tenant's access token stays known to the log
redactor."""

from __future__ import annotations

import httpx
from pydantic import SecretStr

from bot.auth0.transport import Auth0Transport
from bot.logs import SECRETS


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
