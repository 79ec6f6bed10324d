"""The worker's CPU per request, split between the ack path and the work after it.

    python -m benchmarks.cpu_split [--kind submission|command] [--requests N] [--rounds N]

Starts ``hook-secret-bot run`` (gunicorn, SQLite), warms it up, then has one client send
``--requests`` signed requests back to back, and reads each of the worker's threads' user +
system time from /proc before and after (once the background work is done). Threads are
named with py-spy (``pip install py-spy``; not a project dependency): gunicorn's request
threads are the ack path, ``outbox`` delivers the Slack messages queued in the outbox, ``ui``
opens modals. Unlike a sampling profile this counts CPU spent outside the GIL too (SQLite,
sockets), and it is exact: run it on two commits to compare them.
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import subprocess
import time
from pathlib import Path

from benchmarks.common import Stack, machine, percentile, py_spy, run_load, stack, worker_pid

WARMUP = 100
SETTLE = 3.0  # seconds for the last requests' background work


def _cpu_ticks(pid: int) -> dict[int, int]:
    """User + system clock ticks of each thread of ``pid``."""
    ticks = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rpartition(")")[2].split()
        ticks[int(tid)] = int(fields[11]) + int(fields[12])
    return ticks


def _groups(spy: str, pid: int) -> dict[int, str]:
    """Each thread's group, from the Python thread names py-spy reports."""
    dump = subprocess.run(
        [spy, "dump", "--pid", str(pid)], capture_output=True, text=True, check=True
    ).stdout
    groups = {}
    for line in dump.splitlines():
        if line.startswith("Thread ") and '"' in line:
            name = line.split('"')[1]
            group = "ack path" if name.startswith("ThreadPoolExecutor") else name.split("_")[0]
            group = "gunicorn main" if name == "MainThread" else group
            groups[int(line.split()[1])] = group
    return groups


def _bodies(env: Stack, url: str, kind: str, n: int, tag: str) -> list[str]:
    if kind == "command":
        return env.slash_bodies(n)
    view, hook = env.request_form(url)
    return env.submission_bodies(view, hook, [f"SPLIT_{tag}_{i}" for i in range(n)])


def measure(env: Stack, spy: str, kind: str, n: int, tag: str) -> dict[str, float]:
    """One round: CPU ms per request by thread group, and the ack's p50 / p99."""
    bot = env.start_bot(f"bot-{tag}")
    try:
        run_load(bot.url, _bodies(env, bot.url, kind, WARMUP, f"w{tag}"), 1)
        bodies = _bodies(env, bot.url, kind, n, tag)
        pid = worker_pid(bot.proc.pid)
        time.sleep(SETTLE)
        before = _cpu_ticks(pid)
        result = run_load(bot.url, bodies, 1)
        time.sleep(SETTLE)
        after = _cpu_ticks(pid)
        groups = _groups(spy, pid)
    finally:
        bot.stop()
    per_tick = 1000 / os.sysconf("SC_CLK_TCK") / n
    split: dict[str, float] = collections.defaultdict(float)
    for tid, ticks in after.items():
        split[groups.get(tid, "ui")] += (ticks - before.get(tid, 0)) * per_tick
    split["total"] = sum(split.values())
    split["p50"] = percentile(result["latencies"], 50) * 1000
    split["p99"] = percentile(result["latencies"], 99) * 1000
    return split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=("submission", "command"), default="submission")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    spy = py_spy()
    with stack() as env:
        rounds = [measure(env, spy, args.kind, args.requests, str(r)) for r in range(args.rounds)]
    print(f"Machine: {machine()}")
    print(
        f"{args.kind}: {args.requests} requests from one client, {args.rounds} rounds (a fresh "
        "bot each); CPU ms per request, mean of the rounds\n"
    )
    names = sorted({k for r in rounds for k in r} - {"total", "p50", "p99"})
    mean = {k: statistics.mean(r.get(k, 0.0) for r in rounds) for k in [*names, "total"]}
    keys = [k for k in names if mean[k] >= 0.005]  # threads idle throughout are left out
    print("| " + " | ".join([*keys, "total", "ack p50 / p99 ms"]) + " |")
    print("|" + "---|" * (len(keys) + 2))
    cells = [f"{mean[k]:.2f}" for k in [*keys, "total"]]
    p50, p99 = (statistics.mean(r[k] for r in rounds) for k in ("p50", "p99"))
    print("| " + " | ".join([*cells, f"{p50:.1f} / {p99:.1f}"]) + " |")


if __name__ == "__main__":
    main()
