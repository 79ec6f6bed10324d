"""The ``hook-secret-bot`` command line: run, check, demo, audit, keygen."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bot import audit
from bot.crypto import generate_key
from bot.logs import configure_logging
from bot.settings import Mode, SettingsError, StoreSettings, load_app_settings, load_settings

EXIT_SETTINGS = 2
EXIT_UNREADABLE = 3  # audit verify/export: the database could not be read


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and run one command; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_SETTINGS
    try:
        return int(args.handler(args))
    except SettingsError as error:
        for line in error.problems:
            print(line, file=sys.stderr)
        return EXIT_SETTINGS


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hook-secret-bot", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    commands.add_parser(
        "run", help="serve Slack (Socket Mode with SLACK_APP_TOKEN, else HTTP)"
    ).set_defaults(handler=_run)
    commands.add_parser("check", help="verify settings and connectivity").set_defaults(
        handler=_check
    )
    commands.add_parser("demo", help="the whole flow locally, no credentials").set_defaults(
        handler=_demo
    )
    commands.add_parser("keygen", help="print a new HOOK_SECRET_ENCRYPTION_KEY").set_defaults(
        handler=lambda _: print(generate_key()) or 0
    )
    audit_cmd = commands.add_parser("audit", help="verify or export the audit trail")
    audit_sub = audit_cmd.add_subparsers(dest="audit_command", required=True)
    audit_sub.add_parser("verify", help="check the hash chain").set_defaults(handler=_verify)
    export = audit_sub.add_parser("export", help="print the trail as JSON lines")
    export.add_argument("--since", type=_iso8601, help="ISO 8601 time; earlier records are skipped")
    export.set_defaults(handler=_export)
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
    settings = load_app_settings(Mode.RUN)
    _logging(settings)
    from bot import server

    if settings.socket_mode:
        server.serve_socket_mode(settings)
    else:
        server.serve_http(settings)
    return 0


def _check(_: argparse.Namespace) -> int:
    settings = load_app_settings(Mode.CHECK)
    # check's output is its lines alone: a failure it finds is on its line, not in a log line.
    configure_logging("CRITICAL", settings.log_format, sys.stderr)
    from bot.check import run_checks

    return run_checks(settings)


def _demo(_: argparse.Namespace) -> int:
    from bot.demo import run_demo

    return run_demo()


def _store_settings() -> StoreSettings:
    settings = load_settings(Mode.STORE)
    configure_logging("WARNING", settings.log_format, sys.stderr)
    return settings


def _read_trail(settings: StoreSettings, work: Callable[[Session], int]) -> int:
    """Run ``work`` on the trail; a database that can't be read exits 3, never 1 (broken)."""
    # The store alone, not bot.runtime: a cron job checking the trail needs no Slack client.
    from bot.store import Store

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


def _verify(_: argparse.Namespace) -> int:
    return _read_trail(_store_settings(), _verify_trail)


def _verify_trail(session: Session) -> int:
    result = audit.verify(session)
    if result.broken_at is not None:
        print(
            f"audit trail BROKEN at record {result.broken_at}: {result.problem} "
            f"({result.checked} records intact before it)"
        )
        return 1
    print(f"audit trail intact: {result.checked} records")
    return 0


def _export(args: argparse.Namespace) -> int:
    settings = _store_settings()

    def write(session: Session) -> int:
        for record in audit.export(session, args.since):
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        return 0

    return _read_trail(settings, write)
