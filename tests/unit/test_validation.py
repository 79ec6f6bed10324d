"""``form_errors`` and friends: what the request form refuses, keyed by block id."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from bot.approvals.states import Kind
from bot.limits import NAME_MAX, REASON_MAX, VALUE_MAX, VALUE_PLACEHOLDER
from bot.slack import ids
from bot.slack.validation import (
    NUL_IN_TEXT,
    TOO_LONG_SHOWN,
    VALUE_ECHOED,
    RequestForm,
    comment_problem,
    form_errors,
    parse_form,
    value_problem,
)


def form(**changes: Any) -> RequestForm:
    fields: dict[str, Any] = {
        "target": "01-hook",
        "target_label": "Hook (credentials-exchange)",
        "secret_name": "API_KEY",
        "value": SecretStr("s3cr3t-value"),
        "reason": "vendor rotated the key",
    }
    fields.update(changes)
    return RequestForm(**fields)


def test_a_complete_form_has_no_errors() -> None:
    """Hook, name, value and reason as expected: nothing to say."""
    assert form_errors(form(), Kind.ADD, require_reason=True) == {}


@pytest.mark.parametrize("hook_id", [None, "", "!unavailable", "../../users", "h" * 65])
def test_hook_must_be_an_id_from_the_list(hook_id: str | None) -> None:
    """No hook, the 'unavailable' option or anything not shaped like an id is refused."""
    errors = form_errors(form(target=hook_id), Kind.ADD, require_reason=True)
    assert errors == {ids.BLOCK_HOOK: "Choose a hook from the list."}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("", "Enter a secret name."),
        ("1KEY", "Use letters, digits, _ and -"),
        ("KEY NAME", "Use letters, digits, _ and -"),
        ("A" * (NAME_MAX + 1), f"At most {NAME_MAX} characters."),
    ],
)
def test_secret_name_rules(name: str, expected: str) -> None:
    """Names start with a letter or _, use letters, digits, _ and -, and fit 128 characters."""
    errors = form_errors(form(secret_name=name), Kind.ADD, require_reason=True)
    assert errors[ids.BLOCK_SECRET_NAME].startswith(expected)
    assert set(errors) == {ids.BLOCK_SECRET_NAME}


def test_longest_valid_name_passes() -> None:
    """Exactly 128 characters is fine."""
    assert form_errors(form(secret_name="A" * NAME_MAX), Kind.ADD, require_reason=True) == {}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "Enter the secret value"),
        ("   ", "Enter the secret value"),
        ("x" * (VALUE_MAX + 1), f"At most {VALUE_MAX} characters."),
        (VALUE_PLACEHOLDER, f"{VALUE_PLACEHOLDER} is Auth0's placeholder"),
        ("abc\x00def", "The value contains a NUL character"),
    ],
)
def test_value_rules(value: str | None, expected: str) -> None:
    """Blank, too long, Auth0's placeholder or NUL are refused, never quoting the value."""
    secret = SecretStr(value) if value is not None else None
    problem = value_problem(secret)
    assert problem is not None and problem.startswith(expected)
    if value and value.strip() and value != VALUE_PLACEHOLDER:
        assert value not in problem
    errors = form_errors(form(value=secret), Kind.ADD, require_reason=True)
    assert errors == {ids.BLOCK_SECRET_VALUE: problem}


def test_remove_needs_no_value() -> None:
    """A removal carries no value, so none is asked for."""
    assert form_errors(form(value=None), Kind.REMOVE, require_reason=True) == {}


def test_reason_required_only_with_approvals() -> None:
    """An empty reason is refused when approvals are on, fine when they are off."""
    assert set(form_errors(form(reason=""), Kind.ADD, require_reason=True)) == {ids.BLOCK_REASON}
    assert form_errors(form(reason=""), Kind.ADD, require_reason=False) == {}


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("r" * (REASON_MAX + 1), f"At most {REASON_MAX} characters."),
        ("a\x00b", NUL_IN_TEXT),
        ("\u200b" * 400, TOO_LONG_SHOWN),  # 400 typed, 3,200 shown as code points
        ("&" * 600, TOO_LONG_SHOWN),  # 3,000 shown as &amp;
    ],
)
def test_reason_limits(reason: str, expected: str) -> None:
    """A reason too long, holding NUL, or too long once shown in Slack is refused."""
    assert form_errors(form(reason=reason), Kind.ADD, require_reason=False) == {
        ids.BLOCK_REASON: expected
    }


def test_value_pasted_into_name_or_reason_is_refused_in_both() -> None:
    """A value of six or more characters repeated in a shown field is refused there."""
    value = "Sup3rSecret"
    errors = form_errors(
        form(value=SecretStr(value), secret_name=value, reason=f"set to {value}"),
        Kind.ADD,
        require_reason=True,
    )
    assert errors == {ids.BLOCK_SECRET_NAME: VALUE_ECHOED, ids.BLOCK_REASON: VALUE_ECHOED}


def test_short_values_are_not_searched_for() -> None:
    """A value under six characters matches ordinary words by chance: not checked."""
    errors = form_errors(form(value=SecretStr("key"), reason="new key"), Kind.ADD, True)
    assert errors == {}


def test_comment_problem_for_nul_and_what_slack_could_not_show() -> None:
    """Comments may be anything but NUL, or more than a section holds once shown."""
    assert comment_problem(None) is None
    assert comment_problem("looks fine") is None
    assert comment_problem("<" * 747) is None  # "Comment: " and 2,988 shown: fits
    assert comment_problem("a\x00") == NUL_IN_TEXT
    assert comment_problem("<" * 748) == TOO_LONG_SHOWN


def test_parse_form_reads_state_and_keeps_the_value_secret() -> None:
    """The modal's state becomes a RequestForm; the value is a SecretStr, others stripped."""
    option = {"text": {"type": "plain_text", "text": "Hook (trigger)"}, "value": "01-hook"}
    view = {
        "state": {
            "values": {
                ids.BLOCK_HOOK: {ids.BLOCK_HOOK: {"selected_option": option}},
                ids.BLOCK_SECRET_NAME: {ids.BLOCK_SECRET_NAME: {"value": "  API_KEY "}},
                ids.BLOCK_SECRET_VALUE: {ids.BLOCK_SECRET_VALUE: {"value": " v "}},
                ids.BLOCK_REASON: {ids.BLOCK_REASON: {"value": None}},
            }
        }
    }
    parsed = parse_form(view)
    assert (parsed.target, parsed.target_label) == ("01-hook", "Hook (trigger)")
    assert (parsed.secret_name, parsed.reason) == ("API_KEY", "")
    assert isinstance(parsed.value, SecretStr) and parsed.value.get_secret_value() == " v "
    assert " v " not in repr(parsed)


def test_parse_form_of_an_empty_view() -> None:
    """Nothing filled in: no hook, no value, empty texts."""
    assert parse_form({}) == RequestForm(None, None, "", None, "")
