"""End to end under Auth0's free-tier rate limit: submit → approve → applied, none lost.

    python -m benchmarks.end_to_end [--requests N] [--people K] [--action [--build-seconds S]]

The Auth0 sandbox enforces the free tier's limit (2 requests burst, 2 per second) on the
Management API. K requester/approver pairs work at once, each through the real flow over HTTP:
``/hook-secret add`` → form → submit; click Approve → approval modal → submit. The run ends
when every confirmation has been posted (or after a deadline). It reports throughput, the
submit→confirmation latency, how often Auth0 answered 429, and checks that no request was
lost, none applied twice, and no rate-limit error reached anyone in Slack.

With ``--action`` every request adds a secret to one Auth0 Action instead (whole-list PATCH,
build, deploy; at most 30 secrets per action, so N ≤ 27): it reports the Auth0 calls on the
action (all of them, and those from the first approval on), the deploys, and the
submit→deployed (confirmation) time. Without ``--requests`` it runs one change by one person
and then ten changes by five people, each on a fresh stack, and ends with a table of both.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import httpx

from benchmarks.common import Stack, machine, percentile, stack
from bot.slack import ids
from standins.auth0 import FULL_SCOPES, RateLimit
from standins.slack import SlackDriver
from tests.harness.process import APPROVALS, ORIGIN

SECRETS_PER_HOOK = 20  # Auth0's cap
DEADLINE = 170.0
# When each request was approved (wall clock, as the sandbox records its requests), by name.
APPROVED_AT: dict[str, float] = {}
RATE_LIMIT_WORDS = re.compile(r"rate.?limit|too many requests|\b429\b", re.IGNORECASE)


def _people(n: int) -> tuple[list[str], list[str]]:
    return [f"U0R{i:03d}" for i in range(n)], [f"U0A{i:03d}" for i in range(n)]


def _pick(driver: SlackDriver, requester: str, view: dict[str, Any], hook: str) -> Any:
    """The hook's option in the picker; like a person, type again while the list is empty
    (the bot answers options loads within 2 s from its cache, empty before the first load)."""
    for _ in range(30):
        ack = driver.block_suggestion(requester, ids.BLOCK_HOOK, ids.BLOCK_HOOK, "", view)
        groups = ack.payload().get("option_groups") or [ack.payload()]
        offered = [o for g in groups for o in g.get("options", [])]
        options = [o for o in offered if o["value"] == hook]
        if options:
            return options[0]
        time.sleep(1)
    raise RuntimeError("the hook never showed up in the picker")


def _view(
    env: Stack, callback_id: str, wanted: Callable[[dict[str, Any]], bool], timeout: float = 60
) -> dict[str, Any]:
    """The open modal with this callback id that ``wanted`` picks out (not a stale one)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for view in env.slack.open_views.values():
            if view.get("callback_id") == callback_id and wanted(view):
                return view
        time.sleep(0.05)
    raise TimeoutError(f"no {callback_id} modal opened")


def _one(env: Stack, events_url: str, requester: str, approver: str, hook: str, name: str) -> Any:
    """One person requests ``name``; another approves it. When it was submitted, the acks."""
    with env.driver(events_url) as driver:
        mark = env.slack.mark()
        fields = driver.slash_command_fields(requester, "add", channel_id=ORIGIN)
        driver.send("slash_commands", fields)
        opened = env.slack.wait_for(
            "views.open",
            lambda c: c.ok and c.args.get("trigger_id") == fields["trigger_id"],
            timeout=60,
            after=mark,
        )
        view = opened.response["view"]
        option = _pick(driver, requester, view, hook)
        submitted = time.monotonic()
        answer = driver.view_submission(
            requester,
            view,
            {
                ids.BLOCK_HOOK: {"selected_option": option},
                ids.BLOCK_SECRET_NAME: name,
                ids.BLOCK_SECRET_VALUE: f"value-of-{name}",
                ids.BLOCK_REASON: "end-to-end benchmark",
            },
        )
        message = env.slack.wait_for_message(
            APPROVALS,
            lambda m: (
                f"`{name}`" in m.get("text", "")
                and any(b.get("type") == "actions" for b in m.get("blocks", []))
            ),
            timeout=60,
        )
        request_id = next(
            e["value"]
            for b in message["blocks"]
            if b.get("type") == "actions"
            for e in b["elements"]
            if e.get("action_id") == ids.ACTION_APPROVE
        )
        driver.block_action(approver, ids.ACTION_APPROVE, message=message, channel_id=APPROVALS)
        modal = _view(env, ids.CALLBACK_APPROVE, lambda v: v["private_metadata"] == request_id)
        APPROVED_AT[name] = time.time()
        decided = driver.view_submission(approver, modal, {ids.BLOCK_COMMENT: None})
        return submitted, answer, decided


def _drive(
    env: Stack,
    events_url: str,
    names: list[str],
    pairs: list[tuple[str, str]],
    hooks: list[str],
    per_target: int = SECRETS_PER_HOOK,
) -> tuple[dict[str, Any], dict[str, float], float]:
    """Run every request through the flow; what each got, when each was confirmed, how long."""
    started = time.monotonic()
    seen: dict[str, float] = {}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for message in env.slack.messages(ORIGIN):
                for name in names:
                    if name not in seen and f"`{name}`" in message.get("text", ""):
                        seen[name] = time.monotonic()
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    with ThreadPoolExecutor(len(pairs)) as pool:
        futures = [
            pool.submit(_one, env, events_url, *pairs[i % len(pairs)], hooks[i // per_target], name)
            for i, name in enumerate(names)
        ]
        results = dict(zip(names, (f.result() for f in futures), strict=True))
    while len(seen) < len(names) and time.monotonic() - started < DEADLINE:
        time.sleep(0.1)
    stop.set()
    elapsed = max(seen.values(), default=time.monotonic()) - started
    return results, seen, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=None, help="30 (hooks)")
    parser.add_argument("--people", type=int, default=5)
    parser.add_argument("--action", action="store_true", help="change one Auth0 Action")
    parser.add_argument("--build-seconds", type=float, default=2.0, help="sandbox build time")
    args = parser.parse_args()
    if args.action:
        _actions(args)
        return
    args.requests = args.requests or 30
    requesters, approvers = _people(args.people)
    with stack(rate_limit=RateLimit.FREE) as env:
        for person in requesters + approvers:
            env.slack.add_user(person, person.lower())
        hooks = [env.hook_id] + [
            env.auth0.add_hook(f"Hook {n}") for n in range(1, -(-args.requests // SECRETS_PER_HOOK))
        ]
        bot = env.start_bot(
            HOOK_SECRET_REQUESTERS=",".join(requesters),
            HOOK_SECRET_APPROVERS=",".join(approvers),
        )
        names = [f"E2E_{i:03d}" for i in range(args.requests)]
        pairs = list(zip(requesters, approvers, strict=True))
        try:
            results, seen, elapsed = _drive(env, bot.events_url, names, pairs, hooks)
            metrics = httpx.get(bot.url + "/metrics").text
        finally:
            bot.stop()
        _report(env, bot.audit(), metrics, names, results, seen, elapsed, hooks)


def _report(
    env: Stack,
    audit: list[dict[str, Any]],
    metrics: str,
    names: list[str],
    results: dict[str, Any],
    seen: dict[str, float],
    elapsed: float,
    hooks: list[str],
) -> None:
    stored: dict[str, str] = {}
    for hook in hooks:
        stored.update(env.auth0.secrets(hook))
    posts = [r for r in env.auth0.requests if r.method == "POST" and r.path.endswith("/secrets")]
    api = [r for r in env.auth0.requests if r.path.startswith("/api/")]
    throttled = [r for r in api if r.status == 429]
    lost = [n for n in names if stored.get(n) != f"value-of-{n}"]
    failed = [r for r in audit if r["event"] == "request.failed"]
    added = [r for r in audit if r["event"] == "secret.added"]
    said = [
        str(c.args)
        for c in env.slack.calls
        if c.method.startswith(("chat.", "views.", "conversations."))
    ]
    acks = [a.body.decode() for _, *answers in results.values() for a in answers]
    surfaced = [t for t in said + acks if RATE_LIMIT_WORDS.search(t)]
    latency = [seen[n] - results[n][0] for n in names if n in seen]
    waits = next(
        (
            float(line.split()[-1])
            for line in metrics.splitlines()
            if line.startswith("hook_secret_bot_auth0_rate_limit_waits_total ")
        ),
        0.0,
    )
    print(f"Machine: {machine()}")
    print(f"requests: {len(names)} by {len(set(results))} names; confirmed: {len(seen)}")
    print(f"throughput: {len(seen) / elapsed:.2f} applied/s over {elapsed:.1f} s")
    if latency:
        print(
            f"submit → confirmation: p50 {percentile(latency, 50):.1f} s, "
            f"p99 {percentile(latency, 99):.1f} s, max {max(latency):.1f} s"
        )
    print(
        f"Auth0 Management API calls: {len(api)} ({len(api) / elapsed:.2f}/s), "
        f"answered 429: {len(throttled)}; bot waited on the limit {waits:.0f} times"
    )
    print(f"secret POSTs: {len(posts)} (statuses {sorted({p.status for p in posts}, key=str)})")
    print(f"audit: {len(added)} secret.added, {len(failed)} request.failed")
    print(f"lost (not in Auth0 with its value): {lost or 'none'}")
    for name in lost:
        events = [r["event"] + ":" + str(r["outcome"]) for r in audit if r["secret_name"] == name]
        answers = [a.body.decode()[:200] for a in results[name][1:]]
        print(f"  {name}: audit {events}; acks {answers}")
    for text in surfaced:
        print(f"  shown: {text[:300]}")
    print(f"rate-limit errors shown to people in Slack: {len(surfaced)}")
    refused = [
        f"{n}: {a.body.decode()[:120]}" for n, (_, *acks) in results.items() for a in acks if a.body
    ]
    print(f"submissions or decisions not accepted at once: {refused or 'none'}")
    ok = not lost and not failed and not surfaced and not refused and len(posts) == len(names)
    print("RESULT:", "ok" if ok else "PROBLEM")


def _actions(args: argparse.Namespace) -> None:
    """One run as asked, or one change and then ten from five people; a table at the end."""
    runs = [(args.requests, args.people)] if args.requests else [(1, 1), (10, 5)]
    rows = [_action_run(n, k, args.build_seconds) for n, k in runs]
    print(f"\nfree-tier rate limit (2 burst, 2/s), build {args.build_seconds:g} s")
    print(
        "| changes | people | Auth0 calls for the approvals | calls on the action from the "
        "first approval on | deploys | p50 | max | total | ok |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(str(v) for v in row) + " |")


def _action_run(n: int, people: int, build_seconds: float) -> tuple[object, ...]:
    """Every request adds one secret to one action that already holds three."""
    requesters, approvers = _people(people)
    APPROVED_AT.clear()
    with stack(rate_limit=RateLimit.FREE) as env:
        env.auth0.set_scopes(*FULL_SCOPES)
        env.auth0.actions.build_seconds = build_seconds
        action_id = env.auth0.actions.add("Bench action", {f"OLD_{n}": "x" for n in range(3)})
        for person in requesters + approvers:
            env.slack.add_user(person, person.lower())
        bot = env.start_bot(
            HOOK_SECRET_REQUESTERS=",".join(requesters),
            HOOK_SECRET_APPROVERS=",".join(approvers),
        )
        names = [f"ACT_{i:03d}" for i in range(n)]
        pairs = list(zip(requesters, approvers, strict=True))
        key = f"action:{action_id}"
        try:
            results, seen, elapsed = _drive(env, bot.events_url, names, pairs, [key], 10**6)
        finally:
            bot.stop()
        report = _report_actions(env, bot.audit(), action_id, names, results, seen, elapsed)
        applying = _calls_applying(bot.output(), set(approvers))
        if n <= 10:  # each call the apply made, from the first approval on
            first = min(APPROVED_AT.values())
            for at, operation in applying:
                print(f"  +{at - first:5.2f} s  {operation}")
            for name, at in sorted(APPROVED_AT.items(), key=lambda item: item[1]):
                print(f"  approved {name} at +{at - first:5.2f} s")
        return (n, people, len(applying), *report)


_ACTION_CALLS = frozenset(
    {"get_action", "patch_action", "post_deploy_action", "get_action_versions", "get_actions"}
)


def _calls_applying(output: str, approvers: set[str]) -> list[tuple[float, str]]:
    """The Auth0 calls on actions the bot made for an approval (the approver's context, as
    its log lines say), with when each was answered: the reads a requester's form made
    before its ack are not counted."""
    calls = []
    for line in output.splitlines():
        if not line.startswith("{") or '"auth0 call"' not in line:
            continue
        record = json.loads(line)
        if record.get("operation") in _ACTION_CALLS and record.get("slack_user") in approvers:
            at = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")).timestamp()
            calls.append((at, str(record["operation"])))
    return sorted(calls)


def _report_actions(
    env: Stack,
    audit: list[dict[str, Any]],
    action_id: str,
    names: list[str],
    results: dict[str, Any],
    seen: dict[str, float],
    elapsed: float,
) -> tuple[object, ...]:
    path = f"/api/v2/actions/actions/{action_id}"
    calls = [r for r in env.auth0.requests if r.path.startswith(path)]
    first_approval = min(APPROVED_AT.values(), default=0.0)
    after = [r for r in calls if r.received_at >= first_approval]
    by_kind: dict[str, int] = {}
    for r in after:
        kind = f"{r.method} {r.path.removeprefix(path) or '/'}"
        by_kind[kind] = by_kind.get(kind, 0) + 1
    deploys = by_kind.get("POST /deploy", 0)
    applied = [r for r in audit if r["event"] == "secret.added"]
    failed = [r for r in audit if r["event"] == "request.failed"]
    deployed = env.auth0.actions.deployed_secrets(action_id)
    lost = [n for n in names if deployed.get(n) != f"value-of-{n}"]
    kept = all(deployed.get(f"OLD_{n}") == "x" for n in range(3))
    latency = [seen[n] - results[n][0] for n in names if n in seen]
    throttled = sum(1 for r in env.auth0.requests if r.status == 429)
    print(f"Machine: {machine()}")
    print(f"action changes: {len(names)}; confirmed: {len(seen)} in {elapsed:.1f} s")
    print(
        f"Auth0 calls on the action: {len(calls)}, from the first approval on: {len(after)} "
        f"{dict(sorted(by_kind.items()))}; answered 429 (any path): {throttled}"
    )
    if latency:
        print(
            f"submit → deployed (confirmation): p50 {percentile(latency, 50):.1f} s, "
            f"p99 {percentile(latency, 99):.1f} s, max {max(latency):.1f} s"
        )
    print(f"audit: {len(applied)} secret.added, {len(failed)} request.failed")
    print(
        f"deployed version: {env.auth0.actions.deployed_number(action_id)}; "
        f"other secrets kept: {kept}; lost: {lost or 'none'}"
    )
    ok = not lost and not failed and kept and len(seen) == len(names)
    print("RESULT:", "ok" if ok else "PROBLEM")
    p50 = f"{percentile(latency, 50):.1f} s" if latency else "-"
    worst = f"{max(latency):.1f} s" if latency else "-"
    confirmed = f"{len(seen)}/{len(names)} confirmed" + ("" if ok else ", PROBLEM")
    return (len(after), deploys, p50, worst, f"{elapsed:.1f} s", confirmed)


if __name__ == "__main__":
    main()
