"""Hostile requests over real HTTP to the running bot (issue 23.4): huge headers, chunked
bodies, wrong content types, duplicate form keys, payloads whose `team` or `user` is the
wrong shape. None may be answered with a 500."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlencode, urlparse

import httpx
import pytest

from tests.harness.inprocess import Bot, running_bot
from tests.harness.people import APPROVER, REQUESTER, SIGNING_SECRET

FORM = "application/x-www-form-urlencoded"


def _signed(body: bytes, content_type: str = FORM) -> dict[str, str]:
    stamp = str(int(time.time()))
    base = b"v0:" + stamp.encode() + b":" + body
    mac = hmac.new(SIGNING_SECRET.encode(), base, hashlib.sha256).hexdigest()
    return {
        "content-type": content_type,
        "x-slack-request-timestamp": stamp,
        "x-slack-signature": f"v0={mac}",
    }


def _payload(team: object, user: object) -> dict[str, object]:
    return {
        "type": "block_actions",
        "team": team,
        "user": user,
        "api_app_id": "A0APP",
        "token": "legacy",
        "trigger_id": "1.2.3",
        "actions": [{"action_id": "approve", "block_id": "b", "value": "hsr_0", "type": "button"}],
        "response_url": "https://hooks.slack.invalid/x",
    }


SHAPES: dict[str, tuple[bytes, str]] = {
    "team as a list": (
        urlencode({"payload": json.dumps(_payload([{"id": "T0TEAM"}], {"id": APPROVER}))}).encode(),
        FORM,
    ),
    "team as a string": (
        urlencode({"payload": json.dumps(_payload("T0TEAM", {"id": APPROVER}))}).encode(),
        FORM,
    ),
    "team id as a list": (
        urlencode({"payload": json.dumps(_payload({"id": ["T0TEAM"]}, {"id": APPROVER}))}).encode(),
        FORM,
    ),
    "user as a list": (
        urlencode(
            {"payload": json.dumps(_payload({"id": "T0TEAM"}, [APPROVER, REQUESTER]))}
        ).encode(),
        FORM,
    ),
    "user id as a number": (
        urlencode({"payload": json.dumps(_payload({"id": "T0TEAM"}, {"id": 7}))}).encode(),
        FORM,
    ),
    "payload is a list": (urlencode({"payload": "[1,2,3]"}).encode(), FORM),
    "payload twice": (
        urlencode(
            [
                ("payload", json.dumps(_payload({"id": "T0TEAM"}, {"id": APPROVER}))),
                ("payload", json.dumps(_payload({"id": "T0OTHER"}, {"id": APPROVER}))),
            ]
        ).encode(),
        FORM,
    ),
    "command keys twice": (
        urlencode(
            [
                ("command", "/hook-secret"),
                ("command", "/other"),
                ("team_id", "T0TEAM"),
                ("team_id", "T0OTHER"),
                ("user_id", REQUESTER),
                ("text", "add"),
                ("trigger_id", "1.2"),
            ]
        ).encode(),
        FORM,
    ),
    "form body sent as JSON": (b"payload=%7B%7D", "application/json"),
    "JSON event with team as a list": (
        json.dumps({"type": "event_callback", "team_id": ["T0TEAM"], "event": []}).encode(),
        "application/json",
    ),
    "url_verification with a list challenge": (
        json.dumps({"type": "url_verification", "challenge": ["x"]}).encode(),
        "application/json",
    ),
    "text/plain body": (b"hello", "text/plain"),
    "multipart": (b"--x\r\n\r\n--x--", "multipart/form-data; boundary=x"),
}


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    url = f"sqlite:///{tmp_path_factory.mktemp('edge')}/bot.db"
    with running_bot(url) as running:
        yield running


@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_signed_hostile_body_is_never_a_500(bot: Bot, shape: str) -> None:
    """Signed (as if Slack's secret leaked, or Slack changed a shape) yet not what Slack
    sends: refused or ignored, never a 500."""
    body, content_type = SHAPES[shape]
    answer = httpx.post(
        bot.url + "/slack/events", content=body, headers=_signed(body, content_type)
    )
    assert answer.status_code < 500, (shape, answer.status_code, answer.text)


def test_a_chunked_signed_body_is_never_a_500(bot: Bot) -> None:
    """A signed body sent chunked (Slack sends a length): answered, never a 500."""
    body, _ = SHAPES["team as a list"]

    def chunks() -> Iterator[bytes]:
        yield body[:10]
        yield body[10:]

    answer = httpx.post(bot.url + "/slack/events", content=chunks(), headers=_signed(body))
    assert answer.status_code < 500, answer.text


def _raw(bot: Bot, request: bytes) -> bytes:
    """Send raw bytes to the bot's port; what it answered (maybe nothing: a closed socket)."""
    where = urlparse(bot.url)
    with socket.create_connection((where.hostname or "", where.port or 80), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return received


@pytest.mark.parametrize("size", [8 * 1024, 70 * 1024, 2 * 1024 * 1024])
def test_huge_headers_are_never_a_500(bot: Bot, size: int) -> None:
    """One enormous header line: refused (431/400) or the connection closed, never a 500;
    the bot answers the next request."""
    head = (
        b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
        + b"X-Big: "
        + b"a" * size
        + b"\r\nConnection: close\r\n\r\n{}"
    )
    try:
        answer = _raw(bot, head)
    except (BrokenPipeError, ConnectionResetError):
        answer = b""
    assert not answer.startswith(b"HTTP/1.1 5") and not answer.startswith(b"HTTP/1.0 5"), answer[
        :200
    ]
    assert httpx.get(bot.url + "/healthz").status_code == 200


def test_many_headers_are_never_a_500(bot: Bot) -> None:
    """Thousands of header lines: never a 500; the bot answers the next request."""
    lines = b"".join(b"X-H%d: v\r\n" % i for i in range(5000))
    request = (
        b"POST /slack/events HTTP/1.1\r\nHost: x\r\n" + lines + b"Content-Length: 0\r\n"
        b"Connection: close\r\n\r\n"
    )
    try:
        answer = _raw(bot, request)
    except (BrokenPipeError, ConnectionResetError):
        answer = b""
    assert b" 500 " not in answer[:20], answer[:200]
    assert httpx.get(bot.url + "/healthz").status_code == 200


EVENTS: dict[str, dict[str, object]] = {
    "authorizations as a string": {
        "type": "event_callback",
        "team_id": "T0TEAM",
        "authorizations": "x",
        "event": {"type": "message"},
    },
    "authorizations holding a number": {
        "type": "event_callback",
        "team_id": "T0TEAM",
        "authorizations": [1],
        "event": {"type": "message"},
    },
    "event as a list": {"type": "event_callback", "team_id": "T0TEAM", "event": []},
    "event as a string": {"type": "event_callback", "team_id": "T0TEAM", "event": "x"},
    "team id as a list": {"type": "event_callback", "team_id": ["T0TEAM"], "event": {}},
}


@pytest.mark.parametrize("shape", list(EVENTS))
def test_a_signed_events_api_body_of_the_wrong_shape_is_a_400(bot: Bot, shape: str) -> None:
    """A signed JSON (Events API) body whose fields Bolt indexes are the wrong shape: 400,
    nothing runs (it was a 500, or a listener's traceback and a 200)."""
    body = json.dumps(EVENTS[shape]).encode()
    answer = httpx.post(
        bot.url + "/slack/events", content=body, headers=_signed(body, "application/json")
    )
    assert answer.status_code == 400, (shape, answer.status_code, answer.text)
