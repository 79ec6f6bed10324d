"""What the benchmarks share: stand-ins, processes under test, request bodies, load, RSS."""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from bot.slack import ids
from standins.auth0 import Auth0Sandbox, RateLimit
from standins.slack import SlackDriver, SlackStandIn, build_state_values
from standins.tls import LoopbackTLS, loopback_tls
from tests.harness.process import (
    BOT_TOKEN,
    ORIGIN,
    REQUESTER,
    SIGNING_SECRET,
    BotProcess,
    add_people,
    bot_env,
    free_port,
    start,
)

REPO = Path(__file__).resolve().parents[1]
HOUR = 3600.0


@dataclass
class Stack:
    """The stand-ins (in this process) and a scratch directory."""

    slack: SlackStandIn
    auth0: Auth0Sandbox
    hook_id: str
    workdir: Path
    tls: LoopbackTLS
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_bot(self, name: str = "bot", **extra: str) -> BotProcess:
        """``hook-secret-bot run`` (HTTP mode, SQLite unless DATABASE_URL is given), ready."""
        workdir = self.workdir / name
        database = extra.pop("DATABASE_URL", f"sqlite:///{workdir / 'bot.db'}")
        # The bot trusts the Slack stand-in's certificate as it trusts Slack's: the system store.
        extra.setdefault("SSL_CERT_FILE", str(self.tls.cert_file))
        bot = start(bot_env(self.slack, self.auth0, database, **extra), workdir)
        self.started.append(bot.proc)
        bot.wait_ready(60)
        return bot

    def start_bare(self, mode: str) -> Bare:
        """A bare ack-only Bolt app on the same server stack."""
        port = free_port()
        log = (self.workdir / f"bare-{mode}.log").open("wb")
        command = ["benchmarks.bare_app", str(port), self.slack.api_url, SIGNING_SECRET, mode]
        proc = subprocess.Popen(
            [sys.executable, "-m", *command],
            cwd=REPO,
            env={**os.environ, "SSL_CERT_FILE": str(self.tls.cert_file)},  # Bolt's auth.test
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.started.append(proc)
        bare = Bare(proc, port)
        bare.wait_ready()
        return bare

    def driver(self, url: str) -> SlackDriver:
        return SlackDriver(self.slack, url, SIGNING_SECRET)

    # -- request bodies, made ahead so that the load generator only signs and sends ----------

    def slash_bodies(self, n: int, text: str = "add") -> list[str]:
        """Form bodies of ``/hook-secret add``, each with its own trigger id and response URL."""
        return [
            urlencode(
                {
                    "token": "legacy-verification-token",
                    "team_id": self.slack.team_id,
                    "team_domain": self.slack.team_domain,
                    "channel_id": ORIGIN,
                    "channel_name": "general",
                    "user_id": REQUESTER,
                    "user_name": "rita",
                    "command": ids.COMMAND,
                    "text": text,
                    "api_app_id": self.slack.app_id,
                    "is_enterprise_install": "false",
                    "response_url": self.slack.issue_response_url(REQUESTER, ORIGIN),
                    "trigger_id": self.slack.issue_trigger_id(REQUESTER, ttl=HOUR),
                }
            )
            for _ in range(n)
        ]

    def submission_bodies(
        self, view: dict[str, Any], hook: dict[str, Any], names: list[str]
    ) -> list[str]:
        """Valid request-form submissions, one per secret name (names must be unused)."""
        bodies = []
        for name in names:
            state = build_state_values(
                view,
                {
                    ids.BLOCK_HOOK: hook,
                    ids.BLOCK_SECRET_NAME: name,
                    ids.BLOCK_SECRET_VALUE: f"value-of-{name}-0123456789",
                    ids.BLOCK_REASON: "benchmark",
                },
            )
            payload = {
                "type": "view_submission",
                "team": {"id": self.slack.team_id, "domain": self.slack.team_domain},
                "user": {
                    "id": REQUESTER,
                    "username": "rita",
                    "name": "rita",
                    "team_id": self.slack.team_id,
                },
                "api_app_id": self.slack.app_id,
                "token": "legacy-verification-token",
                "is_enterprise_install": False,
                "trigger_id": self.slack.issue_trigger_id(REQUESTER, ttl=HOUR),
                "view": {**view, "state": {"values": state}},
                "response_urls": [],
            }
            bodies.append(urlencode({"payload": json.dumps(payload)}))
        return bodies

    def request_form(self, bot_url: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Open the real request modal once; the view and the hook picker's option."""
        with self.driver(bot_url + "/slack/events") as driver:
            driver.slash_command(REQUESTER, "add", channel_id=ORIGIN)
            view = self.slack.wait_for_view(REQUESTER, callback_id=ids.CALLBACK_ADD)
            ack = driver.block_suggestion(REQUESTER, ids.BLOCK_HOOK, ids.BLOCK_HOOK, "", view)
            option = next(o for o in ack.payload()["options"] if o["value"] == self.hook_id)
            # Choosing it sends the pick, as Slack does for the form's dispatching hook input.
            driver.view_action(REQUESTER, view, ids.BLOCK_HOOK, {"selected_option": option})
        return view, {"selected_option": option}


@dataclass
class Bare:
    """A bare Bolt app process."""

    proc: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                httpx.post(self.url + "/slack/events", content=b"", timeout=2)
                return
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("bare app did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


@contextmanager
def stack(rate_limit: RateLimit | None = None) -> Iterator[Stack]:
    """Stand-ins whose trigger ids live an hour (bodies are made before they are sent); Slack's
    Web API over HTTPS, as Slack serves it (each new connection costs the bot a handshake)."""
    slack = SlackStandIn(bot_token=BOT_TOKEN, trigger_ttl=HOUR)
    with (
        tempfile.TemporaryDirectory(prefix="hsb-bench-") as tmp,
        loopback_tls() as tls,
        Auth0Sandbox(rate_limit=rate_limit) as auth0,
    ):
        slack.tls = tls.server
        with slack:
            # The stand-in's http.server keeps the default listen backlog of 5: bursts of new
            # connections from the bot's background Slack calls would wait a second for a SYN
            # retry, which real Slack never makes anyone do. Listening again raises the backlog.
            slack._server.socket.listen(1024)  # type: ignore[union-attr]  # set by start()
            add_people(slack)
            hook_id = auth0.add_hook("Client Credentials Exchange")
            env = Stack(slack, auth0, hook_id, Path(tmp), tls)
            try:
                yield env
            finally:
                for proc in env.started:  # whatever a failed run left behind
                    if proc.poll() is None:
                        proc.terminate()
                        proc.wait(40)


def run_load(url: str, bodies: list[str], concurrency: int, pause: float = 0) -> dict[str, Any]:
    """Send ``bodies`` with ``concurrency`` connections from a separate process, each
    waiting ``pause`` seconds after an answer before it sends the next request."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as spec:
        json.dump(
            {
                "url": url + "/slack/events",
                "secret": SIGNING_SECRET,
                "bodies": bodies,
                "concurrency": concurrency,
                "pause": pause,
            },
            spec,
        )
    try:
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.load", spec.name],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        )
    finally:
        os.unlink(spec.name)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0–100), by the inclusive method."""
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def py_spy() -> str:
    """The py-spy executable, beside this interpreter (a venv's bin) or anywhere on PATH."""
    spy = shutil.which("py-spy", path=f"{Path(sys.executable).parent}{os.pathsep}{os.defpath}")
    spy = spy or shutil.which("py-spy")
    if spy is None:
        raise SystemExit("py-spy is not installed: pip install py-spy")
    return spy


def worker_pid(master: int, timeout: float = 30.0) -> int:
    """The pid of the gunicorn worker under ``master`` (the bot runs one)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = _children(master)
        if children:
            return children[0]
        time.sleep(0.05)
    raise RuntimeError("gunicorn started no worker")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by a process and its children (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for each in [pid, *_children(pid)]:
        # Fields after the command name, which is in parentheses and may hold spaces.
        fields = Path(f"/proc/{each}/stat").read_text().rpartition(")")[2].split()
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def memory_mib(pid: int) -> dict[str, tuple[float, float]]:
    """(RSS, PSS) in MiB of a process and each of its children (Linux /proc).

    RSS counts pages a forked worker still shares with its master twice; PSS splits them.
    """
    sizes = {}
    for each in [pid, *_children(pid)]:
        fields = {}
        for line in Path(f"/proc/{each}/smaps_rollup").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("Rss", "Pss"):
                fields[name] = int(rest.split()[0]) / 1024
        sizes[str(each)] = (fields["Rss"], fields["Pss"])
    return sizes


def machine() -> str:
    """CPU model, cores, memory and Python: the context every number needs."""
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory = ""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory = f", {int(line.split()[1]) / 1024 / 1024:.0f} GiB RAM"
    return (
        f"{os.cpu_count()} cores ({model}){memory}, Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )
