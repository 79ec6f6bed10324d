"""An Auth0 tenant the bot serves: its domain and the application it acts as."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr


@dataclass(frozen=True)
class Tenant:
    """One tenant; without a policy file there is one, named ``default`` (``DEFAULT_TENANT``)."""

    name: str
    domain: str
    client_id: str
    client_secret: SecretStr
    base_url: str | None = None

    @property
    def audience(self) -> str:
        """The Management API's audience: always from the domain, whatever ``base_url`` is."""
        return f"https://{self.domain}/api/v2/"
