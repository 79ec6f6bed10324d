"""What a Slack Web API call costs the bot's process: slack_sdk's urllib transport against the
bot's kept-alive pool (``bot.latency.slack_pool.PooledWebClient``), over HTTP and over HTTPS.

    python -m benchmarks.slack_transport [--calls N] [--rounds N]

Both clients call the Slack stand-in's ``views.open`` (a modal like the bot's, the trigger
fresh each time) from one thread, in alternating rounds; the stand-in serves HTTPS with a
certificate made for the run (Slack serves nothing else; the other benchmarks use HTTP).
Reported per call, median of the rounds: the calling thread's CPU (``time.thread_time``, which
leaves out the stand-in's threads) and the wall time on loopback, where a round trip costs
nothing; over a real network every new connection adds one round trip, and a TLS handshake
one or two more.
"""

from __future__ import annotations

import argparse
import ssl
import statistics
import time
from collections.abc import Callable

from slack_sdk import WebClient

from benchmarks.common import machine
from bot.approvals.states import Kind
from bot.latency.slack_pool import PooledWebClient
from bot.slack.blocks.request_form import request_modal
from standins.slack import SlackStandIn
from standins.tls import loopback_tls

TOKEN = "xoxb-transport-benchmark"  # noqa: S105 - the stand-in's token, not a secret
USER = "UBENCH"
WARMUP = 30


def _per_call(slack: SlackStandIn, client: WebClient, calls: int) -> tuple[float, float]:
    """CPU and wall milliseconds per ``views.open`` of the bot's request modal."""
    view = request_modal(Kind.ADD, private_metadata="{}", require_reason=True)
    triggers = [slack.issue_trigger_id(USER) for _ in range(calls)]
    cpu, wall = time.thread_time(), time.perf_counter()
    for trigger in triggers:
        client.views_open(trigger_id=trigger, view=view)
    return (
        (time.thread_time() - cpu) / calls * 1000,
        (time.perf_counter() - wall) / calls * 1000,
    )


def _measure(
    tls: ssl.SSLContext | None, client_tls: ssl.SSLContext | None, calls: int, rounds: int
) -> dict[str, tuple[float, float]]:
    slack = SlackStandIn(bot_token=TOKEN)
    slack.tls = tls
    with slack:
        slack.add_user(USER, "bench")
        made: dict[str, Callable[[], WebClient]] = {
            "urllib (slack_sdk's default)": lambda: WebClient(
                token=TOKEN, base_url=slack.api_url, ssl=client_tls
            ),
            "kept-alive pool (the bot)": lambda: PooledWebClient(
                token=TOKEN, base_url=slack.api_url, ssl=client_tls
            ),
        }
        clients = {name: make() for name, make in made.items()}
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in clients}
        for client in clients.values():
            _per_call(slack, client, WARMUP)
        for _ in range(rounds):
            for name, client in clients.items():
                samples[name].append(_per_call(slack, client, calls))
        for client in clients.values():
            if isinstance(client, PooledWebClient):
                client.close()
    return {
        name: (statistics.median(c for c, _ in got), statistics.median(w for _, w in got))
        for name, got in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300, help="calls per round and client")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"Machine: {machine()}")
    print(f"views.open, {args.calls} calls × {args.rounds} rounds per client, one thread\n")
    print("| scheme | transport | CPU ms/call | wall ms/call |")
    print("|---|---|---|---|")
    with loopback_tls() as tls:
        for scheme, server, client in (("http", None, None), ("https", tls.server, tls.client())):
            for name, (cpu, wall) in _measure(server, client, args.calls, args.rounds).items():
                print(f"| {scheme} | {name} | {cpu:.3f} | {wall:.3f} |")


if __name__ == "__main__":
    main()
