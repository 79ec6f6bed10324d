"""Ack latency, CPU per request and idle memory: the bot beside a bare Bolt app, in one run.

    python -m benchmarks.ack_latency [--quick] [--auth0-latency 0,300] [--database-url URL]
                                     [--docs [docs/benchmarks.md]]

For each Auth0 latency (milliseconds the Auth0 sandbox waits before it answers) and for 1, 10
and 50 concurrent connections sending signed requests back to back (and one connection that
waits 50 ms after each answer: one person at a time, whose background work is done before
the next request, where back to back it competes with the next ack), measures the time to
Slack's answer of a slash command (``/hook-secret add``: ack, then the modal opens in the
background) and of a request-form view submission (the bot checks the form and stores the
encrypted request before it acks) for:

- the bot (``hook-secret-bot run``: gunicorn, one gthread worker, SQLite unless given a URL);
- a bare Bolt app that only acks in the request path (``process_before_response=True``), on
  the same gunicorn configuration.

Both get the same request bodies; the load generator runs in its own process, the stand-ins
in this one. It also reports each app's CPU milliseconds per request (its processes' user +
system time over the run, background work included) and the idle PSS of everything each
started (gunicorn master + worker). ``--docs`` rewrites the table between the benchmark
markers of ``docs/benchmarks.md`` (or of the file it names).
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    Stack,
    cpu_seconds,
    machine,
    memory_mib,
    percentile,
    run_load,
    stack,
)
from tests.harness.process import APPROVALS

# (connections, milliseconds each waits after an answer before its next request)
LEVELS = ((1, 0), (10, 0), (50, 0), (1, 50))
REQUESTS = {(1, 0): 200, (10, 0): 500, (50, 0): 1000, (1, 50): 200}
QUICK = {(1, 0): 50, (10, 0): 200, (50, 0): 400, (1, 50): 50}
WARMUP = 50
APPS = ("bot", "bare")
KINDS = ("slash command", "view submission")
SAME = ("kind", "clients", "pause_ms", "auth0_ms")  # a bot row and its bare row
BEGIN, END = "<!-- benchmark:ack_latency -->", "<!-- /benchmark:ack_latency -->"
# The page that keeps the benchmark history, in this checkout.
DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


class Run:
    """One benchmark run: the processes under test and the rows measured."""

    def __init__(self, env: Stack, urls: dict[str, str], pids: dict[str, int]) -> None:
        self.env = env
        self.urls = urls
        self.pids = pids
        self.rows: list[dict[str, Any]] = []
        self._form: tuple[dict[str, Any], dict[str, Any]] | None = None
        self._serial = 0

    def bodies(self, kind: str, n: int) -> list[str]:
        """Fresh bodies: new trigger ids, or submissions with names never used."""
        if kind == "slash command":
            return self.env.slash_bodies(n)
        if self._form is None:
            self._form = self.env.request_form(self.urls["bot"])
        self._serial += 1
        names = [f"BENCH_{self._serial}_{i}" for i in range(n)]
        return self.env.submission_bodies(*self._form, names)

    def measure(
        self, app: str, kind: str, level: tuple[int, int], n: int, latency: int
    ) -> dict[str, Any]:
        """Send ``n`` requests with ``level``'s connections and pause; the latencies and the
        CPU used."""
        clients, pause = level
        bodies = self.bodies(kind, n)
        before, cpu = _background_done(self.env, kind), cpu_seconds(self.pids[app])
        result = run_load(self.urls[app], bodies, clients, pause / 1000)
        row: dict[str, Any] = {
            "app": app,
            "kind": kind,
            "clients": clients,
            "pause_ms": pause,
            "auth0_ms": latency,
        }
        if app == "bot":
            row["background_done"] = _wait_background(self.env, kind, before, n)
        latencies = result["latencies"]
        row.update(
            requests=len(latencies),
            p50_ms=percentile(latencies, 50) * 1000,
            p99_ms=percentile(latencies, 99) * 1000,
            rps=len(latencies) / result["wall"],
            cpu_ms=(cpu_seconds(self.pids[app]) - cpu) / n * 1000,
            statuses=result["statuses"],
        )
        self.rows.append(row)
        return row


def _background_done(env: Stack, kind: str) -> int:
    """Work the bot finished after its acks: modals opened, or approval requests posted and
    their requesters told where they wait (so that no level's work spills into the next)."""
    if kind == "slash command":
        return _ok_calls(env, "views.open")
    return min(len(env.slack.messages(APPROVALS)), _ok_calls(env, "chat.postEphemeral"))


def _ok_calls(env: Stack, method: str) -> int:
    return sum(1 for c in env.slack.calls_to(method) if c.ok)


def _wait_background(env: Stack, kind: str, before: int, sent: int, patience: float = 60) -> str:
    """How much of the background work the acked requests queued got done (waits a while)."""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline and _background_done(env, kind) - before < sent:
        time.sleep(0.2)
    return f"{_background_done(env, kind) - before}/{sent}"


def _idle_pss(pid: int) -> float:
    time.sleep(3.0)  # startup work (the first sweep, the hook list) has finished
    return sum(pss for _, pss in memory_mib(pid).values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    parser.add_argument("--auth0-latency", default="0,300", help="milliseconds, comma-separated")
    parser.add_argument("--database-url", help="the bot's DATABASE_URL (a scratch database)")
    parser.add_argument(
        "--docs",
        type=Path,
        nargs="?",
        const=DOCS,
        help="rewrite the table in docs/benchmarks.md (or in this file)",
    )
    args = parser.parse_args()
    counts = QUICK if args.quick else REQUESTS
    latencies = [int(ms) for ms in args.auth0_latency.split(",")]
    started = time.monotonic()
    with stack() as env:
        bot = env.start_bot(**({"DATABASE_URL": args.database_url} if args.database_url else {}))
        bare = env.start_bare("request-path")
        idle = {"bot": _idle_pss(bot.proc.pid), "bare": _idle_pss(bare.proc.pid)}
        run = Run(
            env, {"bot": bot.url, "bare": bare.url}, {"bot": bot.proc.pid, "bare": bare.proc.pid}
        )
        try:
            for latency in latencies:
                env.auth0.latency = latency / 1000
                for kind in KINDS:
                    for app in APPS:
                        run_load(run.urls[app], run.bodies(kind, WARMUP), 1)
                    for level in LEVELS:
                        for app in APPS:
                            _print(run.measure(app, kind, level, counts[level], latency))
        finally:
            bare.stop()
            bot.stop()
    table = _table(run.rows, idle, time.monotonic() - started, args)
    print("\n" + table + "\n\n" + json.dumps({"idle_pss_mib": idle, "rows": run.rows}))
    if args.docs:
        _rewrite(args.docs, table)


def _print(row: dict[str, Any]) -> None:
    print(
        f"Auth0 {row['auth0_ms']:>3} ms {row['kind']:<16} c={row['clients']:<3} "
        f"pause={row['pause_ms']:<3} {row['app']:<5} "
        f"p50 {row['p50_ms']:8.2f} ms  p99 {row['p99_ms']:8.2f} ms  {row['rps']:6.0f} req/s  "
        f"{row['cpu_ms']:6.2f} CPU ms/req  {row['statuses']} {row.get('background_done', '')}",
        flush=True,
    )


def _table(rows: list[dict[str, Any]], idle: dict[str, float], seconds: float, args: Any) -> str:
    database = "PostgreSQL" if args.database_url else "SQLite"
    lines = [
        f"Machine: {machine()}; {database}; run took {seconds:.0f} s; "
        f"`python -m benchmarks.ack_latency{' --quick' if args.quick else ''}`.",
        f"Idle PSS (gunicorn master + worker): bot {idle['bot']:.1f} MiB, "
        f"bare {idle['bare']:.1f} MiB.",
        "",
        "| Auth0 | kind | clients | bot p50 / p99 ms | bare p50 / p99 ms | p99 ratio "
        "| bot req/s | CPU ms/req bot / bare |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in (r for r in rows if r["app"] == "bot"):
        base = next(r for r in rows if r["app"] == "bare" and all(r[k] == row[k] for k in SAME))
        clients = f"{row['clients']}" + (f", {row['pause_ms']} ms apart" if row["pause_ms"] else "")
        lines.append(
            f"| {row['auth0_ms']} ms | {row['kind']} | {clients} "
            f"| {row['p50_ms']:.1f} / {row['p99_ms']:.1f} | {base['p50_ms']:.1f} / "
            f"{base['p99_ms']:.1f} | {row['p99_ms'] / base['p99_ms']:.1f}× | {row['rps']:.0f} "
            f"| {row['cpu_ms']:.2f} / {base['cpu_ms']:.2f} |"
        )
    return "\n".join(lines)


def _rewrite(target: Path, table: str) -> None:
    text = target.read_text()
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"{target} has no {BEGIN} … {END} markers")
    target.write_text(pattern.sub(lambda _: f"{BEGIN}\n{table}\n{END}", text))


if __name__ == "__main__":
    main()
