"""Where the bot's worker spends CPU on a kind of request: py-spy samples, top entries.

    python -m benchmarks.profile [--kind submission|command] [--requests N] [--warmup N]
        [--within FUNCTION] [--raw FILE]

Starts ``hook-secret-bot run`` (gunicorn, SQLite), sends ``--warmup`` requests (so that caches
and the log redactor are as full as in a long-running bot), then samples the worker with
py-spy (``pip install py-spy``; not a project dependency) while one client sends
``--requests`` more back to back, and prints the functions with the most samples: on the
CPU themselves (own) and with their callees (total). Only threads holding the GIL are
sampled: this is where the worker's CPU goes, not where it waits. ``--within`` keeps only the
samples whose stack holds a function of that name (``BoundedWorker.handle``: the ack path);
percentages are then of those samples.
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.common import Stack, machine, py_spy, run_load, stack, worker_pid

RATE = 500  # samples per second
OURS = re.compile(r"[(/]bot/(?!sandbox/)")  # a frame in the bot's package, not its stand-ins


def _bodies(env: Stack, bot_url: str, kind: str, n: int, tag: str) -> list[str]:
    if kind == "command":
        return env.slash_bodies(n)
    view, hook = env.request_form(bot_url)
    return env.submission_bodies(view, hook, [f"PROF_{tag}_{i}" for i in range(n)])


def _frame(raw: str) -> str:
    """``function (path/to/file.py:line)`` as ``function file.py:line``."""
    name, _, where = raw.partition(" (")
    return f"{name} {where.rstrip(')').rsplit('/', 1)[-1]}"


@dataclass
class Profile:
    """Samples per frame: on the CPU themselves (own) and with their callees (total)."""

    samples: int = 0
    own: collections.Counter[str] = field(default_factory=collections.Counter)
    total: collections.Counter[str] = field(default_factory=collections.Counter)
    ours: set[str] = field(default_factory=set)  # frames of the bot's own modules

    @classmethod
    def read(cls, collapsed: Path, within: str | None = None) -> Profile:
        profile = cls()
        for line in collapsed.read_text().splitlines():
            stack_text, _, weight = line.rpartition(" ")
            raw = stack_text.split(";")
            frames = [_frame(f) for f in raw]
            if within and not any(f.split(" ", 1)[0] == within for f in frames):
                continue
            n = int(weight)
            profile.samples += n
            profile.own[frames[-1]] += n
            for frame in set(frames):
                profile.total[frame] += n
            profile.ours.update(f for f, r in zip(frames, raw, strict=True) if OURS.search(r))
        return profile

    def table(self, frames: list[str]) -> str:
        rows = ["| own % | total % | function |", "|---|---|---|"]
        for frame in frames:
            own, total = (100 * c[frame] / self.samples for c in (self.own, self.total))
            rows.append(f"| {own:.1f} | {total:.1f} | `{frame}` |")
        return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=("submission", "command"), default="submission")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--within", help="only samples under this function name")
    parser.add_argument("--raw", help="also write py-spy's collapsed stacks to this file")
    args = parser.parse_args()
    spy = py_spy()
    with stack() as env:
        bot = env.start_bot()
        try:
            run_load(bot.url, _bodies(env, bot.url, args.kind, args.warmup, "w"), 1)
            bodies = _bodies(env, bot.url, args.kind, args.requests, "p")
            out = env.workdir / "profile.txt"
            pid = str(worker_pid(bot.proc.pid))
            options = [
                "--format",
                "raw",
                "--gil",
                "--function",
                "--rate",
                str(RATE),
                "--nonblocking",
            ]
            sampler = subprocess.Popen(
                [spy, "record", "--pid", pid, *options, "--output", str(out)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)  # let py-spy attach
            result = run_load(bot.url, bodies, 1)
            time.sleep(2.0)  # the background work the last requests queued
            sampler.send_signal(2)  # SIGINT: py-spy writes its output and exits
            sampler.wait(30)
        finally:
            bot.stop()
        profile = Profile.read(out, args.within)
        if args.raw:
            Path(args.raw).write_text(out.read_text())
    print(f"Machine: {machine()}")
    per_request = profile.samples / RATE / len(result["latencies"]) * 1000
    print(
        f"{args.kind}: {len(result['latencies'])} requests, {profile.samples} samples holding "
        f"the GIL (about {per_request:.1f} ms of the worker's CPU per request)\n"
    )
    print(profile.table([frame for frame, _ in profile.own.most_common(args.top)]))
    ours = sorted(profile.ours, key=lambda f: -profile.total[f])[: args.top]
    print("\nThe bot's own functions, by total:\n\n" + profile.table(ours))


if __name__ == "__main__":
    main()
