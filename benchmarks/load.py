"""Closed-loop load generator: C connections each sending signed Slack requests back to back,
or pausing after each answer (a person, not a flood).

Runs in its own process (``python -m benchmarks.load SPEC.json``) so that its CPU use does not
share a GIL with the stand-ins. A small HTTP/1.1 keep-alive client over asyncio streams keeps
the client's own overhead low and identical for every app measured. Prints one JSON object.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


def _signed(secret: bytes, body: bytes, host: str, path: str) -> bytes:
    timestamp = str(int(time.time()))
    base = b"v0:" + timestamp.encode() + b":" + body
    signature = "v0=" + hmac.new(secret, base, hashlib.sha256).hexdigest()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\nX-Slack-Request-Timestamp: {timestamp}\r\n"
        f"X-Slack-Signature: {signature}\r\n\r\n"
    )
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    fields = (line.partition(":") for line in lines[1:] if line)
    headers = {name.strip().lower(): value.strip() for name, _, value in fields}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, body, headers.get("connection", "").lower() == "close"


async def _run(spec: dict[str, Any]) -> dict[str, Any]:
    url = urlsplit(spec["url"])
    host, port, path = url.hostname or "127.0.0.1", url.port or 80, url.path
    secret = spec["secret"].encode()
    bodies = [b.encode() for b in spec["bodies"]]
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    non_empty = 0
    next_index = iter(range(len(bodies)))
    pause = float(spec.get("pause", 0))  # seconds a user waits after an answer

    async def user() -> None:
        nonlocal non_empty
        reader, writer = await asyncio.open_connection(host, port)
        for index in next_index:
            request = _signed(secret, bodies[index], f"{host}:{port}", path)
            started = time.perf_counter()
            writer.write(request)
            status, body, close = await _read_response(reader)
            latencies.append(time.perf_counter() - started)
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            non_empty += bool(body)
            if pause:
                await asyncio.sleep(pause)
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(user() for _ in range(spec["concurrency"])))
    wall = time.perf_counter() - started
    return {"latencies": latencies, "statuses": statuses, "non_empty": non_empty, "wall": wall}


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    print(json.dumps(asyncio.run(_run(spec))))


if __name__ == "__main__":
    main()
