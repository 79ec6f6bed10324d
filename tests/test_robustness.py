"""Failure modes inside the bot: lost keys, self-rejection, saturated pools, slow hook lists."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from pydantic import SecretStr

from bot.approvals.states import State
from bot.auth0.hooks import HooksApi
from bot.auth0.transport import Auth0Transport
from bot.db.encryption import generate_key
from bot.logs import SECRETS
from bot.ops import check_auth0
from bot.slack import ids
from bot.targets.catalog import HookCatalog
from standins.auth0 import Auth0Sandbox
from tests.harness.inprocess import (
    APPROVALS,
    APPROVER,
    GROUPIE,
    ORIGIN,
    REQUESTER,
    request_id_of,
    serve,
    workspace,
)


def test_a_value_no_key_can_decrypt_fails_the_request_instead_of_leaving_it_approved(
    sqlite_url: str,
) -> None:
    """After the encryption key is replaced, approving fails cleanly: audited, erased, told.
    The Approve click already finds that no configured key made the value (nor its seal), so
    no decision modal opens."""
    with workspace(sqlite_url) as ws:
        with serve(ws.settings, ws.slack, ws.auth0, ws.hook_id) as bot:
            message = bot.request_approval()
        other_key = ws.settings.model_copy(
            update={"hook_secret_encryption_key": SecretStr(generate_key())}
        )
        with serve(other_key, ws.slack, ws.auth0, ws.hook_id) as bot:
            assert bot.click(message, ids.ACTION_APPROVE, APPROVER).status == 200
            bot.drain()
            row = bot.store.get(request_id_of(message))
            assert row is not None and row.state == State.FAILED
            assert row.failure_reason == "undecryptable" and row.value_ciphertext is None
            failed = [r for r in bot.audit() if r["event"] == "request.failed"]
            assert failed and failed[0]["outcome"] == "undecryptable"
            told = bot.slack.ephemerals(REQUESTER)[-1]["text"]
            assert "no configured encryption key" in told
            assert not any(r.method == "POST" and "secrets" in r.path for r in ws.auth0.requests)


def test_the_requester_cannot_reject_their_own_request_through_the_modal(sqlite_url: str) -> None:
    """A requester who is also an approver can't reject their own request via the modal."""
    approvers = f"{REQUESTER},{APPROVER}"
    with (
        workspace(sqlite_url, hook_secret_approvers=approvers) as ws,
        serve(ws.settings, ws.slack, ws.auth0, ws.hook_id) as bot,
    ):
        message = bot.request_approval()
        request_id = request_id_of(message)
        view = {
            "id": "V0FORGED",
            "type": "modal",
            "callback_id": ids.CALLBACK_REJECT,
            "private_metadata": request_id,
            "blocks": [
                {
                    "type": "input",
                    "block_id": ids.BLOCK_COMMENT,
                    "optional": True,
                    "label": {"type": "plain_text", "text": "Comment"},
                    "element": {"type": "plain_text_input", "action_id": ids.BLOCK_COMMENT},
                }
            ],
        }
        ack = bot.driver.view_submission(REQUESTER, view, {ids.BLOCK_COMMENT: None})
        assert ids.BLOCK_COMMENT in ack.json()["errors"]
        row = bot.store.get(request_id)
        assert row is not None and row.state == State.PENDING
        denied = [r for r in bot.audit() if r["event"] == "approval.denied"]
        assert denied[-1]["actor"] == REQUESTER and denied[-1]["outcome"] == "self_approval"


def test_stale_hook_list_lookups_from_a_full_pool_finish_with_one_list_call() -> None:
    """Callers filling a pool all get the hook list from one refresh, without deadlocking."""
    with Auth0Sandbox() as tenant:
        hook_id = tenant.add_hook("Client Credentials Exchange")
        tenant.latency = 0.3
        client = Auth0Transport(
            domain=tenant.domain,
            client_id=tenant.client_id,
            client_secret=SecretStr("sandbox-client-secret"),
            base_url=tenant.url,
        )
        catalog = HookCatalog(client)
        pool = ThreadPoolExecutor(max_workers=2)
        start = threading.Barrier(2)

        def find() -> str | None:
            start.wait()
            hook = catalog.find(hook_id)
            return hook.id if hook else None

        futures = [pool.submit(find) for _ in range(2)]
        assert [f.result(timeout=10) for f in futures] == [hook_id, hook_id]
        listed = [r for r in tenant.requests if r.path == "/api/v2/hooks"]
        assert len(listed) == 1
        pool.shutdown()
        catalog.close()
        client.close()


def test_a_value_pasted_into_the_reason_or_name_is_refused_and_kept_nowhere(
    sqlite_url: str,
) -> None:
    """The value typed into the reason or name too is refused; neither field is recorded."""
    value = "pastedTWICE9f3k2"
    with workspace(sqlite_url) as ws, serve(ws.settings, ws.slack, ws.auth0, ws.hook_id) as bot:
        ack = bot.submit(bot.open_form(), value=value, reason=f"new key is {value}")
        assert "contains the secret value" in ack.json()["errors"][ids.BLOCK_REASON]
        ack = bot.submit(
            bot.open_form(), value=value, name=f"K_{value.replace('-', '_')}"[:20], reason="ok"
        )
        bot.drain()
        assert value not in str(bot.audit()) and value not in str(bot.slack.calls)
        assert all(r["event"] == "request.refused" for r in bot.audit())
        assert bot.store.open_request_for(ws.hook_id, "API_KEY") is None


def test_refusals_are_audited_with_the_reason_they_were_refused(sqlite_url: str) -> None:
    """A name already on the hook is audited as name_exists, naming the (valid) secret."""
    with workspace(sqlite_url) as ws, serve(ws.settings, ws.slack, ws.auth0, ws.hook_id) as bot:
        bot.submit(bot.open_form(), name="EXISTING")
        bot.drain()
        refused = bot.audit()[-1]
        assert refused["event"] == "request.refused"
        assert refused["outcome"] == "name_exists" and refused["secret_name"] == "EXISTING"


def test_a_rate_limited_group_lookup_denies_at_once_and_is_not_cached(sqlite_url: str) -> None:
    """A 429 on usergroups.users.list is not slept out before the ack, nor remembered."""
    with workspace(sqlite_url) as ws, serve(ws.settings, ws.slack, ws.auth0, ws.hook_id) as bot:
        ws.slack.ratelimit_next("usergroups.users.list", 1, retry_after=30)
        started = time.monotonic()
        bot.driver.slash_command(GROUPIE, "add", channel_id=ORIGIN)
        bot.drain()
        assert time.monotonic() - started < 3.0
        assert "not allowed" in bot.slack.ephemerals(GROUPIE)[-1]["text"]
        view = bot.open_form(user=GROUPIE)  # asked again: now a member
        assert view["callback_id"] == ids.CALLBACK_ADD


def test_check_passes_the_scope_line_when_auth0_leaves_scope_out() -> None:
    """A token answer without `scope` is "unknown", not "every scope missing"."""

    def tenant(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/oauth/token"
        return httpx.Response(
            200, json={"access_token": "eyJ0.e30.sig", "expires_in": 86400, "token_type": "Bearer"}
        )

    client = Auth0Transport(
        domain="acme.eu.auth0.com",
        client_id="id",
        client_secret=SecretStr("client-secret"),
        transport=httpx.MockTransport(tenant),
    )
    assert client.token_scopes() is None
    assert "did not list its scopes" in check_auth0.token_check(client.token_scopes()).detail
    client.close()


def test_a_jwt_is_redacted_even_when_nobody_registered_it() -> None:
    """An access-token-shaped string never prints, registered or not."""
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhYmMxMjMifQ.c2lnbmF0dXJlLXZhbHVl"
    assert jwt not in SECRETS.scrub(f"got {jwt} back")


def test_only_one_of_two_sweeps_posts_an_unposted_approval_request(db_url: str) -> None:
    """Two replicas sweeping at once post a request the bot couldn't post exactly once."""
    with workspace(db_url) as ws:
        ws.slack.add_channel(APPROVALS, "secret-approvals", bot_is_member=False)
        with serve(ws.settings, ws.slack, ws.auth0, ws.hook_id) as bot:
            ack = bot.submit(bot.open_form())
            assert ack.status == 200
            bot.drain()
            assert not ws.slack.messages(APPROVALS)
            ws.slack.add_channel(APPROVALS, "secret-approvals", bot_is_member=True)
            bot.clock.advance(120)
            start = threading.Barrier(2)

            def sweep() -> None:
                start.wait()
                bot.services.sweep()

            threads = [threading.Thread(target=sweep) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            bot.drain()  # the outbox worker of this process may have taken the row first
            posted = [m for m in ws.slack.messages(APPROVALS) if m.get("blocks")]
            assert len(posted) == 1


def test_rotating_a_secret_deleted_since_the_request_fails_without_a_patch(
    sqlite_url: str,
) -> None:
    """A rotation whose secret was removed in Auth0 meanwhile fails as secret_not_found."""
    with workspace(sqlite_url) as ws, serve(ws.settings, ws.slack, ws.auth0, ws.hook_id) as bot:
        view = bot.open_form(text="update")
        assert bot.submit(view, name="EXISTING").status == 200
        bot.drain()
        message = next(m for m in ws.slack.messages(APPROVALS) if m.get("blocks"))
        admin = Auth0Transport(
            domain=ws.auth0.domain,
            client_id=ws.auth0.client_id,
            client_secret=SecretStr("sandbox-client-secret"),
            base_url=ws.auth0.url,
        )
        HooksApi(admin).delete_secrets(ws.hook_id, ["EXISTING"])
        admin.close()
        bot.decide(message)
        bot.drain()
        row = bot.store.get(request_id_of(message))
        assert row is not None and row.state == State.FAILED
        assert row.failure_reason == "secret_not_found"
        assert not any(r.method == "PATCH" for r in ws.auth0.requests)
        assert "EXISTING" not in ws.auth0.secrets(ws.hook_id)
