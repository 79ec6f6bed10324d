"""Memory: PSS of everything ``run`` starts, idle and over thousands of full flows.

    python -m benchmarks.memory [--flows 5000] [--warmup 1000] [--round 500] [--people 10]

Starts ``hook-secret-bot run`` (HTTP mode, SQLite) and reads the RSS and PSS of the gunicorn
master and its worker from /proc once idle. Then ``--people`` requesters at once each run full
flows back to back, every one through the real app over HTTP: ``/hook-secret add`` (the modal
opens), submit the form, the approver clicks Approve and submits the approval modal, the bot
applies it in Auth0 and posts the confirmation. Each requester works on a hook of its own,
emptied in Auth0 after each flow (Auth0 holds 20 secrets a hook). Memory is read after every
``--round`` flows once the bot is idle; growth is reported per 1,000 flows after ``--warmup``.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from benchmarks.common import Stack, machine, memory_mib, stack
from bot.slack import ids
from standins.slack import ApiCall, SlackDriver
from tests.harness.process import APPROVALS, APPROVER, CLIENT_SECRET, ORIGIN, REQUESTER

SETTLE = 3.0
WAIT = 60.0


@dataclass(frozen=True)
class Person:
    """A requester, the hook they work on, and that hook's picker option."""

    hook_id: str
    option: dict[str, Any]


def _settle(url: str) -> None:
    """Let background work finish, then ask the bot something, so it is idle when measured."""
    time.sleep(SETTLE)
    httpx.get(url + "/healthz", timeout=10)


def _posted(env: Stack, mark: int, channel: str, *words: str) -> ApiCall:
    return env.slack.wait_for(
        "chat.postMessage",
        lambda c: (
            c.ok and c.args.get("channel") == channel and all(w in c.args["text"] for w in words)
        ),
        timeout=WAIT,
        after=mark,
    )


def _admin(env: Stack) -> httpx.Client:
    """A Management API client of Auth0 itself (the sandbox), as an administrator uses it."""
    token = httpx.post(
        env.auth0.url + "/oauth/token",
        json={
            "grant_type": "client_credentials",
            "client_id": env.auth0.client_id,
            "client_secret": CLIENT_SECRET,
            "audience": env.auth0.audience,
        },
    ).json()["access_token"]
    # A connection per call: the sandbox closes idle keep-alive connections between flows.
    headers = {"Authorization": f"Bearer {token}", "Connection": "close"}
    return httpx.Client(base_url=env.auth0.url, headers=headers)


def _flow(env: Stack, driver: SlackDriver, admin: httpx.Client, person: Person, name: str) -> None:
    """One request from ``/hook-secret add`` to the confirmation that it was applied."""
    mark = env.slack.mark()
    fields = driver.slash_command_fields(REQUESTER, "add", channel_id=ORIGIN)
    assert driver.send("slash_commands", fields).status == 200
    opened = env.slack.wait_for(
        "views.open",
        lambda c: c.ok and c.args.get("trigger_id") == fields["trigger_id"],
        timeout=WAIT,
        after=mark,
    )
    values = {
        ids.BLOCK_HOOK: {"selected_option": person.option},
        ids.BLOCK_SECRET_NAME: name,
        ids.BLOCK_SECRET_VALUE: f"value-of-{name}-0123456789",
        ids.BLOCK_REASON: "memory benchmark",
    }
    submitted = driver.view_submission(REQUESTER, opened.response["view"], values)
    assert submitted.status == 200 and not submitted.body, submitted.body
    message = _posted(env, mark, APPROVALS, f"`{name}`").response["message"]
    request_id = next(
        e["value"]
        for b in message["blocks"]
        if b.get("type") == "actions"
        for e in b["elements"]
        if e.get("action_id") == ids.ACTION_APPROVE
    )
    click = env.slack.mark()
    driver.block_action(APPROVER, ids.ACTION_APPROVE, message=message, channel_id=APPROVALS)
    modal = env.slack.wait_for(
        "views.open",
        lambda c: c.ok and c.response["view"].get("private_metadata") == request_id,
        timeout=WAIT,
        after=click,
    )
    decided = driver.view_submission(APPROVER, modal.response["view"], {ids.BLOCK_COMMENT: None})
    assert decided.status == 200, decided.body
    _posted(env, click, ORIGIN, f"`{name}`", APPROVER)  # the confirmation names the approver
    # Another administrator deletes it in Auth0, so that the hook never fills up.
    removed = admin.request("DELETE", f"/api/v2/hooks/{person.hook_id}/secrets", json=[name])
    removed.raise_for_status()


def _people(env: Stack, url: str, n: int) -> list[Person]:
    hooks = [env.auth0.add_hook(f"Memory {i}") for i in range(n)]
    view, _ = env.request_form(url)
    with env.driver(url + "/slack/events") as driver:
        for _ in range(30):  # the picker's list loads in the background after the first ask
            ack = driver.block_suggestion(REQUESTER, ids.BLOCK_HOOK, ids.BLOCK_HOOK, "", view)
            options = {o["value"]: o for o in ack.payload().get("options", [])}
            if all(h in options for h in hooks):
                return [Person(h, options[h]) for h in hooks]
            time.sleep(1)
    raise RuntimeError("the hooks never showed up in the picker")


def _round(env: Stack, url: str, people: list[Person], first: int, count: int) -> None:
    def worker(index: int) -> None:
        with env.driver(url + "/slack/events") as driver, _admin(env) as admin:
            for n in range(first + index, first + count, len(people)):
                _flow(env, driver, admin, people[index], f"MEM_{n:06d}")

    with ThreadPoolExecutor(len(people)) as pool:
        for future in [pool.submit(worker, i) for i in range(len(people))]:
            future.result()


def _total_pss(sizes: dict[str, tuple[float, float]]) -> float:
    return sum(pss for _, pss in sizes.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flows", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--round", type=int, default=500)
    parser.add_argument("--people", type=int, default=10)
    args = parser.parse_args()
    rows: list[tuple[int, float, dict[str, tuple[float, float]]]] = []
    started = time.monotonic()
    with stack() as env:
        bot = env.start_bot()
        try:
            _settle(bot.url)
            rows.append((0, 0.0, memory_mib(bot.proc.pid)))
            people = _people(env, bot.url, args.people)
            for first in range(0, args.flows, args.round):
                began = time.monotonic()
                _round(env, bot.url, people, first, args.round)
                rate = args.round / (time.monotonic() - began)
                _settle(bot.url)
                rows.append((first + args.round, rate, memory_mib(bot.proc.pid)))
                total = _total_pss(rows[-1][2])
                print(f"{first + args.round} flows: {total:.1f} MiB PSS", flush=True)
        finally:
            bot.stop()
    _report(rows, args.warmup, time.monotonic() - started)


def _report(
    rows: list[tuple[int, float, dict[str, tuple[float, float]]]], warmup: int, seconds: float
) -> None:
    print(f"\nMachine: {machine()}; run took {seconds:.0f} s\n")
    print("| full flows | flows/s | master RSS | worker RSS | master + worker PSS |")
    print("|---|---|---|---|---|")
    for flows, rate, sizes in rows:
        (master_rss, _), *workers = sizes.values()
        worker_rss = sum(rss for rss, _ in workers)
        print(
            f"| {flows:,} | {rate:.0f} | {master_rss:.1f} MiB | {worker_rss:.1f} MiB | "
            f"{_total_pss(sizes):.1f} MiB |"
        )
    warm = next((r for r in rows if r[0] >= warmup), None)
    last = rows[-1]
    if warm is not None and last[0] > warm[0]:
        growth = (_total_pss(last[2]) - _total_pss(warm[2])) / (last[0] - warm[0]) * 1000
        print(
            f"\nidle PSS {_total_pss(rows[0][2]):.1f} MiB; after {warm[0]:,} flows of warm-up, "
            f"growth {growth:+.2f} MiB per 1,000 full flows"
        )


if __name__ == "__main__":
    main()
