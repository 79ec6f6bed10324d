"""A running bot: clients and store built from settings, the app, and its periodic sweep."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)

from bot.auth0.rate_limit import PacedTransport
from bot.auth0.transport import Auth0Transport
from bot.db.audit_chain import chain_keys
from bot.db.encryption import Vault, key_file_for, load_or_create_key
from bot.db.store import Store
from bot.latency.slack_pool import PooledWebClient
from bot.logs import SECRETS, get_logger
from bot.metrics import Metrics
from bot.outbox.sending import READ_WITHIN
from bot.serve import lifecycle
from bot.serve.wsgi import WSGIApp, wsgi_app
from bot.settings import PolicySettings, Settings, SlackSettings, StoreSettings
from bot.settings.policy_file import policy_of
from bot.slack.app import AppSettings, Deps, create_app
from bot.slack.services import Services
from bot.targets.tenants import Tenant

log = get_logger(__name__)
# With 20 s apply leases and 15 s of grace, a crashed apply is taken over within 30 s.
SWEEP_INTERVAL = 10.0
# The preflight's Slack client logs nothing: its failure becomes one `cannot start` line.
_QUIET = logging.getLogger("bot.serve.runtime.preflight")
_QUIET.disabled = True


def register_settings_secrets(settings: StoreSettings) -> None:
    """Teach the log redactor every secret the settings hold (every tenant's client secret)."""
    SECRETS.pin(*settings.encryption_keys)
    if isinstance(settings, SlackSettings):
        for secret in (
            settings.slack_bot_token,
            settings.slack_signing_secret,
            settings.slack_app_token,
        ):
            if secret is not None:
                SECRETS.pin(secret.get_secret_value())
    if isinstance(settings, Settings | PolicySettings):
        for tenant in policy_of(settings).tenants:
            SECRETS.pin(tenant.client_secret.get_secret_value())


def open_store(settings: StoreSettings) -> Store:
    """The migrated store, keying the audit chain with the encryption key."""
    store = Store(settings.database_url)
    store.migrate()
    # After the migration: a database that can't be opened leaves no key file behind.
    store.chain = chain_keys(
        settings.encryption_keys,
        settings.database_url,
        create=True,
        key_file=settings.hook_secret_key_file,
    )
    return store


def open_vault(settings: StoreSettings) -> Vault:
    """The vault, with the configured keys or the generated key file (SQLite only)."""
    path = key_file_for(settings.database_url, settings.hook_secret_key_file)
    keys = settings.encryption_keys or [load_or_create_key(path)]
    return Vault(keys)


def slack_client(settings: SlackSettings, logger: logging.Logger | None = None) -> PooledWebClient:
    """The Web API client, retrying rate limits and dropped connections, over kept-alive
    connections."""
    return PooledWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        timeout=10,
        logger=logger,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=1),
            RateLimitErrorRetryHandler(max_retry_count=2),
        ],
    )


def auth0_client(
    settings: Settings | Tenant, metrics: Metrics | None = None, **options: Any
) -> Auth0Transport:
    """The Management API client of one tenant (the variables' or a policy file's), with its
    own token cache and pacing to the tenant's rate limit; ``options`` (tests) override the
    defaults."""
    tenant = settings if isinstance(settings, Tenant) else policy_of(settings).tenants[0]
    # Waits are counted once, where the pacing holds a call back (after a 429 too).
    on_wait = metrics.observe_wait if metrics else None
    defaults: dict[str, Any] = {
        "transport": PacedTransport(on_wait=on_wait),
        "observer": metrics.observe_auth0 if metrics else None,
    }
    return Auth0Transport(
        domain=tenant.domain,
        client_id=tenant.client_id,
        client_secret=tenant.client_secret,
        base_url=tenant.base_url,
        **(defaults | options),
    )


def auth0_clients(
    settings: AppSettings, metrics: Metrics | None = None, **options: Any
) -> dict[str, Auth0Transport]:
    """A client per tenant, by name, in the policy's order: none shares a token or a pace."""
    return {
        tenant.name: auth0_client(tenant, metrics, **options)
        for tenant in policy_of(settings).tenants
    }


@dataclass
class Runtime:
    """Everything a serving process holds; ``close`` finishes in-flight work first."""

    app: App
    services: Services
    store: Store
    metrics: Metrics
    auth0: dict[str, Auth0Transport]
    slack: WebClient
    _stop: threading.Event
    _sweeper: threading.Thread | None = None
    sweep_interval: float = SWEEP_INTERVAL

    def wsgi(self, signing_secret: str) -> WSGIApp:
        """The WSGI application of HTTP mode."""
        return wsgi_app(
            self.app,
            self.store,
            self.metrics,
            signing_secret=signing_secret,
            in_flight=self.services.background.requests,
        )

    def start_sweeper(self, interval: float | None = None) -> None:
        """Expire and reconcile now, then every ``interval`` seconds (the runtime's own)."""
        interval = interval or self.sweep_interval

        def loop() -> None:
            while True:
                try:
                    self.services.sweep()
                    self.metrics.sweeps.inc()
                except Exception:
                    log.exception("sweep failed")
                if self._stop.wait(interval):
                    return

        self._sweeper = threading.Thread(target=loop, name="sweeper", daemon=True)
        self._sweeper.start()

    def close(self, timeout: float = 30.0) -> None:
        """Stop sweeping, let background work (and what it queues) finish, release clients."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout=timeout)
        if not lifecycle.shutdown(self.services, max(0.0, deadline - time.monotonic())):
            log.warning("background work still running at shutdown", timeout=timeout)
        for client in self.auth0.values():
            client.close()
        if isinstance(self.slack, PooledWebClient):
            self.slack.close()
        self.store.close()


class StartupError(Exception):
    """The bot can't serve: a dependency named in the message is unreachable or refuses it."""


def preflight(settings: AppSettings) -> str:
    """Migrate the database and ask Slack who the bot is; the workspace's team id.

    Run before a port is opened so that a wrong URL or token fails fast with one clear line.
    """
    from bot.db.engine import sqlite_path
    from bot.serve.problems import slack_unreachable, sqlite_file_problem

    register_settings_secrets(settings)
    path = sqlite_path(settings.database_url)
    problem = sqlite_file_problem(path) if path is not None and not path.exists() else None
    if problem:
        raise StartupError(f"DATABASE_URL: {problem}")
    try:
        store = open_store(settings)
    except Exception as error:
        raise StartupError(
            f"DATABASE_URL: the database can't be opened or migrated: {_first_line(error)}"
        ) from error
    store.close()
    slack = slack_client(settings, _QUIET)
    try:
        response = slack.auth_test()
    except SlackApiError as error:
        raise StartupError(
            f"SLACK_BOT_TOKEN: Slack's auth.test said {error.response.get('error')}"
        ) from error
    except Exception as error:
        raise StartupError(slack_unreachable(settings, error, prefixed=True)) from error
    finally:
        slack.close()
    return str(response["team_id"])


def _first_line(error: BaseException) -> str:
    # SQLAlchemy wraps the driver's error and appends its SQL and a docs link: keep the cause.
    cause = getattr(error, "orig", None) or error
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def build_runtime(settings: AppSettings, slack: WebClient | None = None) -> Runtime:
    """Connect to the store, Slack and every tenant's Auth0, and build the app; requests
    whose rule the policy changed expire first (CONTRACT §6)."""
    register_settings_secrets(settings)
    store = open_store(settings)
    metrics = Metrics(pending=store.count_pending)
    slack = slack or slack_client(settings)
    team_id = slack.auth_test()["team_id"]
    auth0 = auth0_clients(settings, metrics)
    app, services = create_app(
        settings,
        Deps(
            slack=slack,
            auth0=auth0,
            store=store,
            vault=open_vault(settings),
            team_id=team_id,
            on_undelivered=metrics.observe_undelivered,
            on_prefetch=metrics.observe_prefetch,
            on_refused=metrics.observe_refused,
        ),
    )
    apply_testing_knobs(settings, services)
    changed = services.workflow.expire_policy_changed()
    if changed:
        log.warning(
            "expired open requests whose rule the policy changed",
            requests=[request.id for request in changed],
        )
    return Runtime(
        app=app,
        services=services,
        store=store,
        metrics=metrics,
        auth0=auth0,
        slack=slack,
        _stop=threading.Event(),
        sweep_interval=settings.hook_secret_testing_sweep_seconds,
    )


def apply_testing_knobs(settings: AppSettings, services: Services) -> None:
    """Hand the timings the testing knobs set (bot.settings) to where they are used; unset,
    they are the product's."""
    workflow, delivery = services.workflow, services.next_steps.delivery
    workflow.timing = replace(
        workflow.timing,
        apply_lease=timedelta(seconds=settings.hook_secret_testing_apply_lease_seconds),
        heartbeat=timedelta(seconds=settings.hook_secret_testing_heartbeat_seconds),
    )
    delivery.backoff = replace(
        delivery.backoff, base=settings.hook_secret_testing_backoff_base_seconds
    )
    delivery.lease = timedelta(seconds=settings.hook_secret_testing_outbox_lease_seconds)
    delivery.sender.read_within = min(READ_WITHIN, delivery.lease.total_seconds() / 3)
