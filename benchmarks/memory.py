"""Memory: resident set size of the bot idle, after 1,000 requests, and after more batches.

    python -m benchmarks.memory [--batches N]

Starts ``hook-secret-bot run`` (HTTP mode, SQLite), reads the RSS and PSS of the gunicorn
master and its worker from /proc once idle, then after each batch of 1,000 signed requests
(half ``/hook-secret add`` slash commands, half valid request-form submissions, 10
connections), once the background work they queued has finished. Later batches show whether
memory keeps growing.
"""

from __future__ import annotations

import argparse
import time

import httpx

from benchmarks.common import machine, memory_mib, run_load, stack

BATCH = 1000
SETTLE = 3.0


def _settle(url: str) -> None:
    """Wait until the bot has posted what the batch asked for, then a little longer."""
    time.sleep(SETTLE)
    httpx.get(url + "/healthz", timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=3)
    args = parser.parse_args()
    rows: list[tuple[str, dict[str, tuple[float, float]]]] = []
    with stack() as env:
        bot = env.start_bot()
        try:
            _settle(bot.url)
            rows.append(("idle", memory_mib(bot.proc.pid)))
            view, hook = env.request_form(bot.url)
            for batch in range(1, args.batches + 1):
                half = BATCH // 2
                names = [f"MEM_{batch}_{i}" for i in range(half)]
                commands = run_load(bot.url, env.slash_bodies(half), 10)
                forms = run_load(bot.url, env.submission_bodies(view, hook, names), 10)
                assert commands["statuses"] == {"200": half}, commands["statuses"]
                assert forms["statuses"] == {"200": half}, forms["statuses"]
                _settle(bot.url)
                rows.append((f"after {batch * BATCH:,} requests", memory_mib(bot.proc.pid)))
        finally:
            bot.stop()
    print(f"Machine: {machine()}\n")
    print("| moment | master RSS | worker RSS | master + worker PSS |")
    print("|---|---|---|---|")
    for moment, sizes in rows:
        (master_rss, master_pss), *workers = sizes.values()
        worker_rss = sum(rss for rss, _ in workers)
        pss = master_pss + sum(pss for _, pss in workers)
        print(f"| {moment} | {master_rss:.1f} MiB | {worker_rss:.1f} MiB | {pss:.1f} MiB |")


if __name__ == "__main__":
    main()
