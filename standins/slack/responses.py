"""Response URLs of the Slack stand-in: the bot posts to them, the stand-in applies them."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qsl

from standins.slack.blockkit import (
    fill_ids,
)
from standins.slack.records import (
    FORM,
    JSON,
    ApiError,
    ResponseError,
    ResponsePost,
    ResponseUrl,
    truthy,
)
from standins.slack.workspace import Workspace


class ResponseUrls(Workspace):
    """Serves the response URLs the workspace issued, five uses in thirty minutes each."""

    def _response_url(
        self, url_id: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, JSON, dict[str, str]]:
        with self._cond:
            entry = self._response_urls.get(url_id)
            payload: JSON = {}
            try:
                if entry is None:
                    raise ResponseError(404, "invalid_url")
                if time.monotonic() - entry.issued_at > self.response_url_ttl:
                    raise ResponseError(404, "expired_url")
                if entry.uses >= self.response_url_uses:
                    raise ResponseError(404, "used_url")
                payload = self._response_payload(headers, body)
                self._apply_response(entry, payload)
                entry.uses += 1
                status, error = 200, None
            except ResponseError as exc:
                status, error = exc.status, exc.error
            self._responses.append(
                ResponsePost(
                    f"{self.base_url}/response/{url_id}",
                    entry.user_id if entry else "",
                    entry.channel_id if entry else "",
                    payload,
                    time.time(),
                    status,
                    error,
                )
            )
            self._cond.notify_all()
        if error is None:
            return 200, {"ok": True}, {}
        return status, {"ok": False, "error": error}, {}

    @staticmethod
    def _response_payload(headers: dict[str, str], body: bytes) -> JSON:
        try:
            if headers.get("content-type", "").startswith(FORM):
                decoded = json.loads(dict(parse_qsl(body.decode())).get("payload", ""))
            else:
                decoded = json.loads(body or b"null")
        except ValueError as exc:
            raise ResponseError(400, "invalid_payload") from exc
        if not isinstance(decoded, dict):
            raise ResponseError(400, "invalid_payload")
        return decoded

    def _apply_response(self, entry: ResponseUrl, payload: JSON) -> None:
        if truthy(payload.get("delete_original")):
            self._delete_original(entry)
            return
        try:
            content = self._message_content(payload)
        except ApiError as exc:
            raise ResponseError(400, exc.error) from exc
        if truthy(payload.get("replace_original")) and self._replace_original(entry, content):
            return
        if payload.get("response_type") == "in_channel":
            self._messages.setdefault(entry.channel_id, []).append(self._bot_message(content))
            return
        message = self._bot_message(content)
        message.update(
            channel=entry.channel_id, user=entry.user_id, is_ephemeral=True, source="response_url"
        )
        self._ephemerals.append(message)
        entry.last_ephemeral_ts = message["ts"]

    def _original(self, entry: ResponseUrl) -> tuple[list[JSON], JSON] | None:
        if entry.message_ts and not entry.is_ephemeral:
            pool = self._messages.get(entry.channel_id, [])
            ts: str | None = entry.message_ts
        else:
            pool = [e for e in self._ephemerals if e["user"] == entry.user_id]
            ts = entry.message_ts or entry.last_ephemeral_ts
        for message in pool:
            if message["ts"] == ts:
                return pool, message
        return None

    def _replace_original(self, entry: ResponseUrl, content: JSON) -> bool:
        found = self._original(entry)
        if found is None:
            return False
        message = found[1]
        message.pop("blocks", None)
        message.update(content)
        if isinstance(message.get("blocks"), list):
            fill_ids(message["blocks"])
        return True

    def _delete_original(self, entry: ResponseUrl) -> None:
        found = self._original(entry)
        if found is None:
            return
        pool, message = found
        if pool is self._messages.get(entry.channel_id):
            pool.remove(message)
        else:
            self._ephemerals.remove(message)
