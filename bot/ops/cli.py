"""The hook-secret-bot command line: run, check, policy, demo, audit, keygen."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

import bot
from bot.db import audit
from bot.db.encryption import generate_key
from bot.logs import configure_logging
from bot.ops.audit_verify import Verification
from bot.settings import (
    Mode,
    PolicyFileSettings,
    PolicySettings,
    Settings,
    SettingsError,
    StoreSettings,
    TenantSettings,
    load_settings,
)

EXIT_SETTINGS = 2
EXIT_UNREADABLE = 3  # audit verify/export: the database could not be read
# The reader of standard output went away (`| head`): the status a shell shows for SIGPIPE.
EXIT_READER_GONE = 128 + signal.SIGPIPE


SLACK_VARS = "SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET or SLACK_APP_TOKEN, SLACK_API_URL"
AUTH0_VARS = "AUTH0_DOMAIN, AUTH0_CLIENT_ID, AUTH0_CLIENT_SECRET, AUTH0_BASE_URL"
POLICY_VARS = (
    "HOOK_SECRET_REQUESTERS, HOOK_SECRET_APPROVERS, HOOK_SECRET_APPROVAL_CHANNEL,\n"
    "  HOOK_SECRET_REQUIRED_APPROVALS, HOOK_SECRET_REQUEST_TTL"
)
POLICY_FILE_NOTE = (
    "HOOK_SECRET_POLICY_FILE (a TOML file of tenants and rules, instead of the AUTH0_* and\n"
    "  HOOK_SECRET_* variables above, which must then be unset; client secrets by variable name)"
)
STORE_VARS = "DATABASE_URL, HOOK_SECRET_ENCRYPTION_KEY, LOG_LEVEL, LOG_FORMAT"
ENV_NOTE = "Settings come from the environment or a .env file in the working directory."
TOP = """Change Auth0 Action and Hook secrets from Slack, with approvals and a tamper-evident
audit trail. Actions are the main target; Hooks (retired by Auth0 on 2026-11-18) are still
served on tenants that have them.

Start with `hook-secret-bot check`, then `hook-secret-bot run`; `hook-secret-bot demo`
shows the whole flow locally without credentials. Each command's --help says which
settings it reads and what its exit status means. A reader that stops early
(`hook-secret-bot demo | head`) ends any command quietly, with status 141."""


@dataclass(frozen=True)
class _Help:
    """One subcommand's help: what it does, what it reads, how it exits."""

    summary: str
    what: str
    reads: str
    exits: str
    settings: bool = True  # whether it reads settings (then where they come from is said)

    def add_to(self, commands: Any, name: str) -> argparse.ArgumentParser:
        reads = f"{self.reads}\n  {ENV_NOTE}" if self.settings else self.reads
        parser: argparse.ArgumentParser = commands.add_parser(
            name,
            help=self.summary,
            description=self.what,
            epilog=f"reads:\n  {reads}\n\nexit status:\n{self.exits}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        return parser


COMMANDS: dict[str, _Help] = {
    "run": _Help(
        "serve Slack (Socket Mode with SLACK_APP_TOKEN, else HTTP on $PORT)",
        "Serve Slack: Socket Mode when SLACK_APP_TOKEN is set, otherwise HTTP on\n"
        "0.0.0.0:$PORT (POST /slack/events, GET /healthz, GET /metrics). Before opening a\n"
        "port it checks the settings, migrates the database and asks Slack who it is.",
        f"{SLACK_VARS},\n  {AUTH0_VARS},\n  {POLICY_VARS},\n  {STORE_VARS}, PORT,\n"
        f"  {POLICY_FILE_NOTE}",
        "  0  stopped by SIGTERM or SIGINT after finishing in-flight work\n"
        "  1  cannot start: the database or Slack refused or can't be reached (the line\n"
        "     names the variable to fix)\n"
        "  2  settings or the policy file missing or invalid, one line per problem",
    ),
    "check": _Help(
        "verify the settings, Slack and Auth0 before the first start",
        "Verify the settings and connectivity: Slack auth.test and the transport, the\n"
        "approval channel, who the requesters and approvers are, the Auth0 token and its\n"
        "action and hook scopes, the actions and hooks it can read, which of them the\n"
        "request form offers (one kind is enough: a tenant without Hooks passes), and the\n"
        "database (never created here). One line per check: ok, FAIL with what to fix, or\n"
        "skip with the reason when a check it needs did not pass; never prints a secret.",
        f"{SLACK_VARS},\n  {AUTH0_VARS},\n  {POLICY_VARS},\n  {STORE_VARS},\n  {POLICY_FILE_NOTE}",
        "  0  every check passed\n"
        "  1  at least one check failed or was skipped (its line says what to do)\n"
        "  2  settings missing or invalid, one line per variable",
    ),
    "policy": _Help(
        "show who may request each target and the approvals it needs",
        "For each tenant (in the policy file's order), each action and hook it offers with\n"
        "the rule that decides it, who may request it and the approvals it needs; a target\n"
        "no rule covers is shown as not requestable. --json prints one JSON object per\n"
        "target with the keys tenant, kind, id, name, rule, requesters, approvals. Reads\n"
        "Auth0, never Slack; never prints a secret.",
        f"{POLICY_FILE_NOTE},\n  or without it {AUTH0_VARS},\n  {POLICY_VARS}",
        "  0  every tenant was read\n"
        "  1  a tenant could not be read (its line on stderr says why; the others are shown)\n"
        "  2  settings or the policy file missing or invalid, one line per problem",
    ),
    "demo": _Help(
        "the whole flow locally, no credentials and no network",
        "Run the real app over real HTTP against a local Slack stand-in and two Auth0\n"
        "sandboxes, dev and prod, served from a policy file: a self-service change in\n"
        "dev, applied at once, and a prod change that needs two approvers; prints what\n"
        "each person would see in Slack and the audit trail.",
        "nothing: the demo brings its own settings and ignores the environment's and any\n"
        "  .env file; its database goes to a new temporary directory, which it names",
        "  0  the flow ran through and the value appeared nowhere it must not\n"
        "  1  a value showed up in Slack or the audit trail, or a change did not land as\n"
        "     its rule says (a bug: please report it)\n"
        "  2  the stand-ins are missing: run it from a source checkout (pip install -e .)",
        settings=False,
    ),
    "keygen": _Help(
        "print a new HOOK_SECRET_ENCRYPTION_KEY",
        "Print a new Fernet key for HOOK_SECRET_ENCRYPTION_KEY. To rotate, put the new\n"
        "key first and the old one after it, comma-separated.",
        "nothing",
        "  0  always",
        settings=False,
    ),
}
AUDIT_EXITS = (
    "  2  settings invalid (DATABASE_URL)\n"
    "  3  the database could not be read (nothing there, no audit table, down);\n"
    "     it is never created or migrated here"
)
AUDIT_COMMANDS: dict[str, _Help] = {
    "verify": _Help(
        "check the audit trail's hash chain (and compare it with the printed lines)",
        "Walk the audit trail's hash chain from the first record and print one line. Each\n"
        "record's hash is an HMAC under a key derived from HOOK_SECRET_ENCRYPTION_KEY (records\n"
        "from before the chain was keyed have a plain SHA-256 hash), so a rewrite needs the key.\n"
        "Records deleted from the end leave no trace in the database: --against FILE compares\n"
        'the trail with the "audit": true lines the bot printed (e.g. exported from a SIEM),\n'
        "record by record (by id), and prints a second line.",
        "DATABASE_URL, HOOK_SECRET_ENCRYPTION_KEY (or SQLite's key file; never created here)",
        "  0  intact: N records (and each equal to its line in FILE)\n"
        "  1  broken at record K (the first bad or missing one), or the trail and FILE\n"
        "     differ at record K (missing, changed or extra on either side)\n"
        "  2  settings invalid (DATABASE_URL, HOOK_SECRET_ENCRYPTION_KEY), or FILE unreadable\n"
        "  3  the database could not be read (nothing there, no audit table, down);\n"
        "     it is never created or migrated here\n"
        "  Without the key it checks links and order only (exit 0 when they hold) and says so.",
    ),
    "export": _Help(
        "print the audit trail as JSON lines",
        "Print the stored audit trail, one JSON object per line: the same objects as\n"
        'the "audit": true lines `run` prints, plus any the process could not print.',
        "DATABASE_URL (nothing else: no Slack or Auth0 settings needed)",
        "  0  exported\n" + AUDIT_EXITS,
    ),
}
HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {}


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and run one command; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        # No command (or `audit` alone): show what there is to run.
        (args.help_of or parser).print_help()
        return EXIT_SETTINGS
    try:
        return int(args.handler(args))
    except SettingsError as error:
        for line in error.problems:
            print(line, file=sys.stderr)
        return EXIT_SETTINGS
    except BrokenPipeError:
        return _reader_gone()


def _reader_gone() -> int:
    """Whoever read standard output stopped (``| head``): end quietly, as SIGPIPE would.
    Python ignores SIGPIPE (a socket write must not kill the bot), so the closed pipe is an
    exception instead; what is still buffered goes nowhere rather than failing at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_READER_GONE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hook-secret-bot",
        description=TOP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"hook-secret-bot {bot.__version__}")
    parser.set_defaults(handler=None, help_of=None)
    commands = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    for name, command in COMMANDS.items():
        sub = command.add_to(commands, name)
        sub.set_defaults(handler=HANDLERS[name])
        if name == "policy":
            sub.add_argument("--json", action="store_true", help="one JSON object per target")
    audit_cmd = commands.add_parser(
        "audit",
        help="verify or export the audit trail",
        description="Verify or export the audit trail (the database only).",
    )
    audit_cmd.set_defaults(help_of=audit_cmd)
    audit_sub = audit_cmd.add_subparsers(dest="audit_command", title="commands", metavar="COMMAND")
    for name, command in AUDIT_COMMANDS.items():
        sub = command.add_to(audit_sub, name)
        sub.set_defaults(handler=HANDLERS[f"audit {name}"])
        if name == "verify":
            sub.add_argument(
                "--against",
                type=Path,
                metavar="FILE",
                help='the bot\'s printed lines (JSON lines with "audit": true) to compare with',
            )
        if name == "export":
            sub.add_argument(
                "--since", type=_iso8601, help="ISO 8601 time; earlier records are skipped"
            )
    return parser


def _iso8601(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _logging(settings: StoreSettings) -> None:
    configure_logging(settings.log_level, settings.log_format)


def _run(_: argparse.Namespace) -> int:
    settings = load_settings(Mode.RUN)
    if not isinstance(settings, Settings | PolicySettings):  # pragma: no cover - by mode
        raise TypeError("RUN mode gives the app settings")
    _logging(settings)
    from bot.serve import server

    if settings.socket_mode:
        server.serve_socket_mode(settings)
    else:
        server.serve_http(settings)
    return 0


def _check(_: argparse.Namespace) -> int:
    settings = load_settings(Mode.CHECK)
    # check's output is its lines alone: a failure it finds is on its line, not in a log line.
    configure_logging("CRITICAL", settings.log_format, sys.stderr)
    if isinstance(settings, PolicySettings):
        from bot.ops.check_policy import run_policy_checks

        return run_policy_checks(settings)
    from bot.ops.check import run_checks

    if not isinstance(settings, Settings):  # pragma: no cover - guarded by mode
        raise TypeError("CHECK mode gives the app settings")
    return run_checks(settings)


def _policy(args: argparse.Namespace) -> int:
    settings = load_settings(Mode.POLICY)
    configure_logging("CRITICAL", settings.log_format, sys.stderr)
    from bot.ops.check_auth0 import Where
    from bot.ops.policy_cmd import show_policy
    from bot.settings.policy_file import policy_of

    if isinstance(settings, PolicyFileSettings):
        return show_policy(settings.policy, as_json=args.json)
    if not isinstance(settings, TenantSettings):  # pragma: no cover - guarded by mode
        raise TypeError("POLICY mode gives tenants and rules")
    where = Where.of_settings(settings)  # the variables, not a place in a file
    return show_policy(policy_of(settings), as_json=args.json, where=lambda _: where)


def _demo(_: argparse.Namespace) -> int:
    from bot.ops.demo import run_demo

    return run_demo()


def _store_settings() -> StoreSettings:
    settings = load_settings(Mode.STORE)
    configure_logging("WARNING", settings.log_format, sys.stderr)
    return settings


def _read_trail(settings: StoreSettings, work: Callable[[Session], int]) -> int:
    """Run ``work`` on the trail; a database that can't be read exits 3, never 1 (broken)."""
    # The store alone, not bot.serve.runtime: a cron job checking the trail needs no Slack client.
    from bot.db.store import Store

    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        # Never create (or migrate) a database here: a typo must not read as an empty trail.
        print(f"cannot read the audit trail: no database file at {url.database}", file=sys.stderr)
        return EXIT_UNREADABLE
    try:
        store = Store(settings.database_url)
        with store.session() as session:
            return work(session)
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).splitlines()[0]
        if url.password:
            reason = reason.replace(str(url.password), "***")
        where = url.render_as_string(hide_password=True)
        print(f"cannot read the audit trail at {where}: {reason}", file=sys.stderr)
        return EXIT_UNREADABLE


def _keygen(_: argparse.Namespace) -> int:
    print(generate_key())
    return 0


def _verify(args: argparse.Namespace) -> int:
    settings = _store_settings()
    verification = Verification.from_settings(settings, args.against)
    if verification is None:  # FILE can't be read: said on stderr
        return EXIT_SETTINGS
    return _read_trail(settings, verification.run)


def _export(args: argparse.Namespace) -> int:
    settings = _store_settings()

    # The sink that prints the live lines: an exported line is byte for byte the one `run` printed.
    sink = audit.AuditSink(sys.stdout)

    def write(session: Session) -> int:
        for record in audit.export(session, args.since):
            sink.emit(record)
        return 0

    return _read_trail(settings, write)


HANDLERS.update(
    {
        "run": _run,
        "check": _check,
        "policy": _policy,
        "demo": _demo,
        "keygen": _keygen,
        "audit verify": _verify,
        "audit export": _export,
    }
)
