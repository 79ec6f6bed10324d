"""The bot's Slack client over kept-alive connections: calls share connections, and Slack's
answers and failures reach slack_sdk (and the bot) as they did over urllib."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from http.client import HTTPException, RemoteDisconnected
from urllib.error import URLError

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)

from bot.latency.slack_pool import PooledWebClient
from bot.slack.web_client import short_lived
from standins.slack import SlackStandIn, webapi
from standins.tls import loopback_tls
from tests.waiting import wait_until

TOKEN = "xoxb-pooled-test-token"
CHANNEL = "C0POOL"


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn(bot_token=TOKEN) as standin:
        standin.add_channel(CHANNEL, "pool", members=[])
        yield standin


def _client(slack: SlackStandIn, **options: object) -> PooledWebClient:
    return PooledWebClient(token=TOKEN, base_url=slack.api_url, timeout=5, **options)  # type: ignore[arg-type]


def test_calls_share_one_connection_and_derived_clients_share_the_pool(slack: SlackStandIn) -> None:
    client = _client(slack)
    for i in range(5):
        client.chat_postMessage(channel=CHANNEL, text=f"message {i}")
    short_lived(client, 2).auth_test()
    assert [m["text"] for m in slack.messages(CHANNEL)] == [f"message {i}" for i in range(5)]
    assert slack.connections == 1
    client.close()


def test_a_connection_slack_closed_while_idle_is_replaced_not_failed(
    slack: SlackStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webapi._Handler, "timeout", 0.3)  # the stand-in ends idle connections
    closed = threading.Event()
    close = webapi._Server.shutdown_request

    def shutdown_request(server: webapi._Server, request: socket.socket) -> None:
        close(server, request)
        closed.set()

    monkeypatch.setattr(webapi._Server, "shutdown_request", shutdown_request)
    client = _client(slack, retry_handlers=[])  # no retry to hide a call on the dead one
    client.auth_test()
    assert closed.wait(10)  # the server has closed the kept-alive connection
    assert client.auth_test()["ok"] is True
    assert slack.connections == 2
    client.close()


def test_slack_refusals_are_slack_api_errors_with_slacks_code(slack: SlackStandIn) -> None:
    client = _client(slack)
    with pytest.raises(SlackApiError) as refused:
        client.chat_postMessage(channel="C0MISSING", text="hello")
    assert refused.value.response["error"] == "channel_not_found"
    slack.fail_for("chat.postMessage", 5, status=500)
    with pytest.raises(SlackApiError) as failed:
        client.chat_postMessage(channel=CHANNEL, text="hello")
    assert failed.value.response.status_code == 500
    assert failed.value.response["error"] == "internal_error"
    client.close()


def test_a_rate_limit_is_retried_after_retry_after_by_slack_sdks_handler(
    slack: SlackStandIn,
) -> None:
    client = _client(slack, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)])
    slack.ratelimit_next("chat.postMessage", 1, retry_after=1)
    started = time.monotonic()
    client.chat_postMessage(channel=CHANNEL, text="after the limit")
    assert time.monotonic() - started >= 1.0
    assert len(slack.calls_to("chat.postMessage")) == 2
    assert [m["text"] for m in slack.messages(CHANNEL)] == ["after the limit"]
    # Without the handler the 429 comes back at once, with its Retry-After.
    slack.ratelimit_next("chat.postMessage", 1, retry_after=7)
    with pytest.raises(SlackApiError) as limited:
        short_lived(client, 2).chat_postMessage(channel=CHANNEL, text="limited")
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["retry-after"] == "7"
    client.close()


def test_a_slow_answer_times_out_as_urllib_did_and_is_not_sent_twice(slack: SlackStandIn) -> None:
    client = _client(slack, retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=1)])
    slack.slow("chat.postMessage", 2.0)
    with pytest.raises(TimeoutError):
        short_lived(client, 1).chat_postMessage(channel=CHANNEL, text="slow")
    client.timeout = 1  # the same client with its handler: a timeout is final
    with pytest.raises(TimeoutError):
        client.chat_postMessage(channel=CHANNEL, text="slow again")
    # Both slow calls answered (the second a second after it timed out): a retry, sent as
    # the call timed out, would have arrived by then.
    wait_until(lambda: len(slack.calls_to("chat.postMessage")) >= 2, 10, what="both answered")
    assert slack.arrived("chat.postMessage") == 2
    slack.slow("chat.postMessage", 0)
    client.close()


def test_nothing_listening_is_a_urllib_error_retried_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = PooledWebClient(
        token=TOKEN,
        base_url=f"http://127.0.0.1:{port}/api/",
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=1)],
    )
    with pytest.raises(URLError, match="Connection refused"):
        client.auth_test()
    failed = [r for r in caplog.records if "Failed to send a request" in r.getMessage()]
    assert len(failed) == 2  # the first try and the one retry, as over urllib
    client.close()


def test_https_with_a_trusted_certificate_and_refused_without() -> None:
    with loopback_tls() as tls:
        slack = SlackStandIn(bot_token=TOKEN)
        slack.tls = tls.server
        with slack:
            assert slack.api_url.startswith("https://")
            client = PooledWebClient(token=TOKEN, base_url=slack.api_url, ssl=tls.client())
            assert client.auth_test()["ok"] is True
            client.close()
            # The system's trust store does not hold the run's certificate.
            untrusting = PooledWebClient(token=TOKEN, base_url=slack.api_url)
            with pytest.raises(URLError, match="CERTIFICATE_VERIFY_FAILED"):
                untrusting.auth_test()
            untrusting.close()


def test_threads_share_the_pool_without_mixing_answers(slack: SlackStandIn) -> None:
    client = _client(slack)
    errors: list[BaseException] = []

    def post(n: int) -> None:
        try:
            for i in range(10):
                sent = client.chat_postMessage(channel=CHANNEL, text=f"t{n}-{i}")
                assert sent["message"]["text"] == f"t{n}-{i}"
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=post, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(slack.messages(CHANNEL)) == 40
    assert slack.connections <= 4
    client.close()


def test_slack_answers_carry_the_headers_urllib_sent(slack: SlackStandIn) -> None:
    client = _client(slack)
    client.auth_test()  # a POST without a body
    (call,) = slack.calls_to("auth.test")
    assert call.headers["content-length"] == "0"
    assert call.headers["accept-encoding"] == "identity"
    client.close()


def test_through_a_proxy_calls_go_over_urllib_unless_no_proxy_names_slack(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy = "http://user:password@proxy.example:3128"
    assert not PooledWebClient(token=TOKEN, base_url="https://slack.com/api/", proxy=proxy).direct
    monkeypatch.setenv("HTTPS_PROXY", proxy)
    assert not PooledWebClient(token=TOKEN, base_url="https://slack.com/api/").direct
    monkeypatch.setenv("NO_PROXY", "slack.com")
    assert PooledWebClient(token=TOKEN, base_url="https://slack.com/api/").direct
    monkeypatch.delenv("HTTPS_PROXY")
    monkeypatch.delenv("NO_PROXY")
    assert PooledWebClient(token=TOKEN, base_url="https://slack.com/api/").direct


class _Broken:
    """A server on 127.0.0.1 that reads each request and answers it with ``reply`` (bytes, then
    it closes the connection): counts the requests that reached it."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.requests = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/api/"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = re.search(rb"(?i)content-length: *(\d+)", head)
                while length and len(body) < int(length.group(1)):  # all of it: no reset
                    body += conn.recv(65536)
                self.requests += 1
                conn.sendall(self.reply)

    def close(self) -> None:
        self._listener.close()


@pytest.mark.parametrize(
    ("reply", "raised", "requests"),
    [
        # Closed before any answer: Slack did not act on it; retried once, as over urllib.
        (b"", RemoteDisconnected, 2),
        # Answered in part: Slack may have acted on it; not retried, as over urllib.
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{", HTTPException, 1),
    ],
)
def test_a_connection_lost_is_retried_only_when_slack_did_not_answer(
    reply: bytes, raised: type[Exception], requests: int
) -> None:
    server = _Broken(reply)
    client = PooledWebClient(
        token=TOKEN,
        base_url=server.url,
        timeout=5,
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=1)],
    )
    with pytest.raises(raised):
        client.chat_postMessage(channel=CHANNEL, text="once")
    assert server.requests == requests
    client.close()
    server.close()


def test_the_pool_uses_slack_sdks_public_api_call_only() -> None:
    """The pool replaces slack_sdk's public ``api_call``, never one of its private methods."""
    own = {name for name in vars(PooledWebClient) if not name.startswith("__")}
    assert "api_call" in own
    assert not {name for name in own if name.startswith("_") and hasattr(WebClient, name)}


def test_a_form_call_is_sent_as_slack_sdk_sends_it(slack: SlackStandIn) -> None:
    """Form arguments without None values, booleans as 1 and 0, the token as a bearer header."""
    client = _client(slack)
    client.conversations_info(channel=CHANNEL, include_locale=True, include_num_members=None)
    (call,) = slack.calls_to("conversations.info")
    assert (call.args["channel"], call.args["include_locale"]) == (CHANNEL, "1")
    assert "include_num_members" not in call.args and "token" not in call.args
    assert call.headers["authorization"] == f"Bearer {TOKEN}"
    client.close()
