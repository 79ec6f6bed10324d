"""Subprocess harness: ``hook-secret-bot run`` as a real process, pointed at stand-ins here."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bot.db.encryption import generate_key
from bot.db.store import Store
from bot.slack import ids
from standins.auth0 import Auth0Sandbox
from standins.slack import SlackDriver, SlackStandIn
from tests.harness.people import (
    APP_TOKEN,
    APPROVALS,
    APPROVER,
    BOT_TOKEN,
    CLIENT_SECRET,
    ORIGIN,
    REPO,
    REQUESTER,
    SIGNING_SECRET,
    free_port,
    secret_posts,
)
from tests.waiting import wait_until

__all__ = [  # the shared names this module's users import from it
    "APPROVALS",
    "APPROVER",
    "APP_TOKEN",
    "BOT_TOKEN",
    "CLIENT_SECRET",
    "ORIGIN",
    "REPO",
    "REQUESTER",
    "SIGNING_SECRET",
    "free_port",
    "secret_posts",
]
# The testing knobs (bot/settings/models.py) that let a SIGKILL test recover in seconds: a dead
# process's apply lapses in 2 s and its outbox rows in 5 s (longer than the 3 s Slack and Auth0
# stand-ins take in those tests, so a live process never takes over its own call), the sweep
# looks twice a second and a failed message is retried within a fraction of a second.
FAST_RECOVERY = {
    "HOOK_SECRET_TESTING_APPLY_LEASE_SECONDS": "2",
    "HOOK_SECRET_TESTING_HEARTBEAT_SECONDS": "0.4",
    "HOOK_SECRET_TESTING_SWEEP_SECONDS": "0.5",
    "HOOK_SECRET_TESTING_BACKOFF_BASE_SECONDS": "0.2",
    "HOOK_SECRET_TESTING_OUTBOX_LEASE_SECONDS": "5",
}
# Variables of the settings table (and the .env file): the subprocess gets only what we give.
_SETTINGS_PREFIXES = ("SLACK_", "AUTH0_", "HOOK_SECRET_", "DATABASE_URL", "PORT", "LOG_")


def add_people(slack: SlackStandIn) -> None:
    """The people and channels every server test uses."""
    slack.add_user(REQUESTER, "rita")
    slack.add_user(APPROVER, "alex")
    slack.add_channel(APPROVALS, "secret-approvals")


def bot_env(
    slack: SlackStandIn, auth0: Auth0Sandbox, database_url: str, **extra: str
) -> dict[str, str]:
    """The environment an operator would set, pointed at the stand-ins, with a free PORT."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SETTINGS_PREFIXES)}
    env.update(
        PYTHONPATH=str(REPO),
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack.api_url,
        AUTH0_DOMAIN=auth0.domain,
        AUTH0_CLIENT_ID=auth0.client_id,
        AUTH0_CLIENT_SECRET=CLIENT_SECRET,
        AUTH0_BASE_URL=auth0.url,
        HOOK_SECRET_REQUESTERS=REQUESTER,
        HOOK_SECRET_APPROVERS=APPROVER,
        HOOK_SECRET_APPROVAL_CHANNEL=APPROVALS,
        HOOK_SECRET_ENCRYPTION_KEY=generate_key(),
        DATABASE_URL=database_url,
        PORT=str(free_port()),
        LOG_FORMAT="json",
        LOG_LEVEL="INFO",
    )
    env.update(extra)
    return env


@dataclass
class BotProcess:
    """A running ``hook-secret-bot`` with its output captured to files."""

    proc: subprocess.Popen[bytes]
    port: int
    stdout: Path
    stderr: Path
    signalled: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def events_url(self) -> str:
        return f"{self.url}/slack/events"

    def output(self) -> str:
        """Everything printed so far, stdout then stderr."""
        return self.stdout.read_text() + self.stderr.read_text()

    def audit(self) -> list[dict[str, Any]]:
        """The audit lines printed so far."""
        records = []
        for line in self.stdout.read_text().splitlines():
            if line.startswith("{") and '"audit"' in line:
                record = json.loads(line)
                if record.get("audit") is True:
                    records.append(record)
        return records

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until /healthz answers 200."""

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"bot exited {self.proc.returncode}:\n{self.output()}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, timeout, what=lambda: f"bot not ready:\n{self.output()}")

    def sweeps(self) -> int:
        """How many sweep passes the bot has completed (its /metrics)."""
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        found = re.search(r"^hook_secret_bot_sweeps_total (\S+)$", text, re.MULTILINE)
        return int(float(found.group(1))) if found else 0

    def wait_quiet(self, database_url: str, timeout: float = 30.0) -> None:
        """Wait until the bot is quiet: the outbox holds nothing undelivered (due, held or
        waiting to be retried), and a whole sweep pass (expire, take over crashed applies, send
        what is due) began and ended after that was seen, with the outbox still empty. What it
        has not sent or done by then, it won't."""
        store = Store(database_url)

        def drained() -> bool:
            return not store.outbox_ready(datetime.now(UTC) + timedelta(days=1), 1)

        def drained_then_swept() -> bool:
            wait_until(drained, timeout, what=lambda: f"outbox never drained:\n{self.output()}")
            seen = self.sweeps()
            wait_until(lambda: self.sweeps() >= seen + 2, timeout, what="two more sweeps")
            return drained()

        try:
            wait_until(drained_then_swept, timeout, what="a quiet outbox after a sweep")
        finally:
            store.close()

    def terminate(self) -> None:
        """Send SIGTERM once (a second one could land while Python tears down, unhandled)."""
        if not self.signalled and self.proc.poll() is None:
            self.signalled = True
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 40.0) -> int:
        """SIGTERM, then wait for the exit status."""
        self.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"bot ignored SIGTERM for {timeout} s:\n{self.output()}") from None


def start(env: dict[str, str], workdir: Path, command: str = "run") -> BotProcess:
    """Start ``python -m bot <command>`` in ``workdir`` (where no .env file lies)."""
    workdir.mkdir(parents=True, exist_ok=True)
    stdout, stderr = workdir / "stdout.log", workdir / "stderr.log"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", command], env=env, cwd=workdir, stdout=out, stderr=err
        )
    return BotProcess(proc, int(env.get("PORT", "3000")), stdout, stderr)


def stop_all(*bots: BotProcess, timeout: float = 40.0) -> list[int]:
    """SIGTERM every bot at once, then collect their exit statuses."""
    for bot in bots:
        bot.terminate()
    return [bot.stop(timeout) for bot in bots]


@contextmanager
def running(env: dict[str, str], workdir: Path, *, ready: bool = True) -> Iterator[BotProcess]:
    """A started bot, stopped with SIGTERM afterwards whatever happened."""
    with running_many([(env, workdir)], ready=ready) as (bot,):
        yield bot


@contextmanager
def running_many(
    specs: list[tuple[dict[str, str], Path]], *, ready: bool = True
) -> Iterator[tuple[BotProcess, ...]]:
    """Several bots started side by side (replicas), all stopped afterwards."""
    bots = tuple(start(env, workdir) for env, workdir in specs)
    try:
        if ready:
            for bot in bots:
                bot.wait_ready()
        yield bots
    finally:
        stop_all(*[bot for bot in bots if bot.proc.poll() is None])


# -- the flow, as people in Slack drive it ------------------------------------------------


def pick_hook(driver: SlackDriver, view: dict[str, Any], hook_id: str) -> dict[str, Any]:
    """Load the hook picker's options over HTTP (block_suggestion) and choose ``hook_id``."""
    ack = driver.block_suggestion(REQUESTER, ids.BLOCK_HOOK, ids.BLOCK_HOOK, "", view)
    assert ack.status == 200 and not ack.problems, (ack.status, ack.body, ack.problems)
    option = next(o for o in ack.payload()["options"] if o["value"] == hook_id)
    return {"selected_option": option}


def submit_request(
    slack: SlackStandIn,
    driver: SlackDriver,
    hook_id: str,
    *,
    name: str = "API_KEY",
    value: str = "s3cr3t-value-0123",
) -> dict[str, Any]:
    """``/hook-secret add`` in the origin channel, fill the form, submit; the approval message."""
    submit_form(slack, driver, hook_id, name=name, value=value)
    return slack.wait_for_message(
        APPROVALS,
        lambda m: (
            name in m.get("text", "")
            and any(b.get("type") == "actions" for b in m.get("blocks", []))
        ),
    )


def submit_form(
    slack: SlackStandIn, driver: SlackDriver, hook_id: str, *, name: str, value: str
) -> None:
    """``/hook-secret add`` in the origin channel, fill the form, submit (acknowledged empty)."""
    mark = slack.mark()
    ack = driver.slash_command(REQUESTER, "add", channel_id=ORIGIN)
    assert ack.status == 200, (ack.status, ack.body)
    slack.wait_for("views.open", after=mark)
    view = slack.wait_for_view(REQUESTER, callback_id=ids.CALLBACK_ADD)
    values = {
        ids.BLOCK_HOOK: pick_hook(driver, view, hook_id),
        ids.BLOCK_SECRET_NAME: name,
        ids.BLOCK_SECRET_VALUE: value,
        ids.BLOCK_REASON: "vendor rotated the key",
    }
    submitted = driver.view_submission(REQUESTER, view, values)
    assert submitted.status == 200 and not submitted.body, (submitted.status, submitted.body)


def open_approval(
    slack: SlackStandIn, driver: SlackDriver, message: dict[str, Any]
) -> dict[str, Any]:
    """The approver clicks Approve; the approval modal that opens."""
    mark = slack.mark()
    ack = driver.block_action(APPROVER, ids.ACTION_APPROVE, message=message, channel_id=APPROVALS)
    assert ack.status == 200, (ack.status, ack.body)
    slack.wait_for("views.open", after=mark)
    return slack.wait_for_view(APPROVER, callback_id=ids.CALLBACK_APPROVE)


def confirmations(slack: SlackStandIn, name: str) -> list[dict[str, Any]]:
    """Messages in the origin channel that confirm ``name`` was applied."""
    return [
        m
        for m in slack.messages(ORIGIN)
        if name in m.get("text", "") and APPROVER in m.get("text", "")
    ]
