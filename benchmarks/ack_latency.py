"""Ack latency and throughput: the bot against two bare Bolt apps, on the same server stack.

    python -m benchmarks.ack_latency [--quick] [--database-url postgresql+psycopg://…]

For 1, 10 and 50 concurrent connections sending signed requests back to back, measures the
time to Slack's answer of a slash command (``/hook-secret add``: ack, then the modal opens in
the background) and of a request-form view submission (the bot checks the hook in Auth0 and
stores the encrypted request before it acks) for:

- the bot (``hook-secret-bot run``: gunicorn, one gthread worker, SQLite);
- a bare Bolt app that only acks, in Bolt's default mode;
- a bare Bolt app that only acks in the request path (``process_before_response=True``).

All three get the same request bodies. The stand-ins run in this process, the load generator
in its own. Loopback only; each run is bounded by the request counts below.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from benchmarks.common import Stack, machine, percentile, run_load, stack
from tests.bot_process import APPROVALS

LEVELS = (1, 10, 50)
REQUESTS = {1: 200, 10: 500, 50: 1000}
QUICK = {1: 50, 10: 200, 50: 400}
WARMUP = 50
APPS = ("bot", "bare default", "bare request-path")


def _row(app: str, kind: str, level: int, result: dict[str, Any]) -> dict[str, Any]:
    latencies = result["latencies"]
    return {
        "app": app,
        "kind": kind,
        "concurrency": level,
        "requests": len(latencies),
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "rps": len(latencies) / result["wall"],
        "statuses": result["statuses"],
        "answered_with_body": result["non_empty"],
    }


_FORMS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}


def _bodies(env: Stack, bot_url: str, kind: str, n: int, tag: str) -> list[str]:
    if kind == "slash command":
        return env.slash_bodies(n)
    if bot_url not in _FORMS:
        _FORMS[bot_url] = env.request_form(bot_url)
    view, hook = _FORMS[bot_url]
    return env.submission_bodies(view, hook, [f"BENCH_{tag}_{i}" for i in range(n)])


def _background_done(env: Stack, kind: str) -> int:
    """Work the bot finished after its acks: modals opened, or approval requests posted."""
    if kind == "slash command":
        return sum(1 for c in env.slack.calls_to("views.open") if c.ok)
    return len(env.slack.messages(APPROVALS))


def _wait_background(env: Stack, kind: str, before: int, sent: int, patience: float = 30) -> str:
    """How much of the background work the acked requests queued got done (waits a while)."""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline and _background_done(env, kind) - before < sent:
        time.sleep(0.2)
    return f"{_background_done(env, kind) - before}/{sent}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    parser.add_argument(
        "--database-url", help="the bot's DATABASE_URL (a scratch database); default SQLite"
    )
    args = parser.parse_args()
    counts = QUICK if args.quick else REQUESTS
    rows: list[dict[str, Any]] = []
    started = time.monotonic()
    with stack() as env:
        bot = env.start_bot(**({"DATABASE_URL": args.database_url} if args.database_url else {}))
        bare = {"bare default": env.start_bare("default")}
        bare["bare request-path"] = env.start_bare("request-path")
        urls = {"bot": bot.url, **{name: b.url for name, b in bare.items()}}
        try:
            for kind in ("slash command", "view submission"):
                for app in APPS:
                    run_load(urls[app], _bodies(env, bot.url, kind, WARMUP, f"w{app[-4:]}"), 1)
                for level in LEVELS:
                    for app in APPS:
                        tag = f"{app[-4:]}_{level}"
                        bodies = _bodies(env, bot.url, kind, counts[level], tag)
                        before = _background_done(env, kind)
                        row = _row(app, kind, level, run_load(urls[app], bodies, level))
                        if app == "bot":
                            done = _wait_background(env, kind, before, len(bodies))
                            row["background_done"] = done
                        rows.append(row)
                        print(
                            f"{kind:<16} c={level:<3} {app:<18} p50 {row['p50_ms']:7.2f} ms  "
                            f"p99 {row['p99_ms']:7.2f} ms  {row['rps']:7.0f} req/s  "
                            f"{row['statuses']} {row.get('background_done', '')}",
                            flush=True,
                        )
        finally:
            for process in bare.values():
                process.stop()
            bot.stop()
    _report(rows, time.monotonic() - started)


def _report(rows: list[dict[str, Any]], seconds: float) -> None:
    print(f"\nMachine: {machine()}; run took {seconds:.0f} s\n")
    print("| kind | clients | app | p50 ms | p99 ms | req/s | bot p99 ÷ request-path p99 |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        ratio = ""
        if row["app"] == "bot":
            base = next(
                r
                for r in rows
                if r["app"] == "bare request-path"
                and r["kind"] == row["kind"]
                and r["concurrency"] == row["concurrency"]
            )
            ratio = f"{row['p99_ms'] / base['p99_ms']:.1f}×"
        print(
            f"| {row['kind']} | {row['concurrency']} | {row['app']} | {row['p50_ms']:.2f} | "
            f"{row['p99_ms']:.2f} | {row['rps']:.0f} | {ratio} |"
        )
    print("\n" + json.dumps(rows))


if __name__ == "__main__":
    main()
