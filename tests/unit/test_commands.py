"""``parse_command``: what the slash command's text asks for, and refusing values."""

from __future__ import annotations

import pytest

from bot.approvals.states import Kind
from bot.slack.validation import Command, parse_command


@pytest.mark.parametrize("text", ["", "   ", "help", "HELP", "frobnicate", "frobnicate x"])
def test_empty_help_or_unknown_is_usage(text: str) -> None:
    """An empty text, help, or an unknown subcommand asks for usage."""
    assert parse_command(text) == Command("help")


def test_add_with_hook_and_name() -> None:
    """``add HOOK NAME`` pre-fills both."""
    assert parse_command("add my-hook API_KEY") == Command("add", Kind.ADD, "my-hook", "API_KEY")


def test_quoted_hook_name_with_spaces() -> None:
    """A quoted hook name keeps its spaces."""
    parsed = parse_command('add "Client Credentials Exchange" API_KEY')
    assert (parsed.hook, parsed.name) == ("Client Credentials Exchange", "API_KEY")


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("update h N", Kind.UPDATE),
        ("rotate h N", Kind.UPDATE),
        ("remove h N", Kind.REMOVE),
        ("ADD h N", Kind.ADD),
    ],
)
def test_subcommands_map_to_kinds(text: str, kind: Kind) -> None:
    """rotate is update; subcommands are case-insensitive."""
    parsed = parse_command(text)
    assert parsed.kind is kind
    assert parsed.action == ("update" if kind is Kind.UPDATE else kind.value)


def test_bare_subcommand_leaves_fields_empty() -> None:
    """``add`` alone opens an empty form."""
    assert parse_command("add") == Command("add", Kind.ADD, None, None)


def test_list_takes_one_optional_hook() -> None:
    """``list`` with or without a hook; two arguments look like a value."""
    assert parse_command("list") == Command("list")
    assert parse_command("list my-hook") == Command("list", hook="my-hook")
    assert parse_command("list my-hook extra") == Command("value_refused")


@pytest.mark.parametrize(
    "text",
    [
        "add hook API_KEY=s3cr3t",
        "API_KEY=s3cr3t",
        "add hook API_KEY s3cr3t",
        "update hook KEY:value",
        "tpyo KEY=value",
        'add "unbalanced KEY=value',
    ],
)
def test_anything_that_may_carry_a_value_is_refused(text: str) -> None:
    """``=`` or ``:`` anywhere, or a third argument, is refused before the subcommand is read."""
    assert parse_command(text) == Command("value_refused")


def test_unbalanced_quote_falls_back_to_plain_words() -> None:
    """An unbalanced quote does not crash the parser."""
    assert parse_command('add "my hook') == Command("add", Kind.ADD, '"my', "hook")
