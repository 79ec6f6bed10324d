"""Parsing and checking what people type: command text and the request form."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from bot.approvals.states import Kind
from bot.limits import NAME_MAX, REASON_MAX, SECRET_NAME, VALUE_MAX, VALUE_PLACEHOLDER
from bot.slack import ids
from bot.slack.text import COMMENT_LABEL, REASON_LABEL, fits_typed
from bot.targets.base import ACTION_PREFIX, TargetRef

# PostgreSQL text can't hold NUL, and Slack would show it as nothing.
NUL_IN_TEXT = "This contains a NUL character: remove it."
TOO_LONG_SHOWN = (
    "Too long once shown in Slack (invisible characters and line breaks are shown as "
    "several characters, < > and & as 4 or 5): shorten it."
)
VALUE_ECHO_MIN = 6
VALUE_ECHOED = (
    "This contains the secret value, and this field is shown in Slack and kept in the audit "
    "trail: remove the value from it."
)
# A subcommand, a hook and a secret name fit in far less; shlex is quadratic on long words
# (a 1 MB text took 45 s), so longer text is refused unparsed, as a possible pasted value.
COMMAND_TEXT_MAX = 1000
SUBCOMMANDS = {"add": Kind.ADD, "update": Kind.UPDATE, "rotate": Kind.UPDATE, "remove": Kind.REMOVE}


@dataclass(frozen=True)
class Command:
    """A parsed ``/hook-secret`` invocation."""

    action: str  # add | update | remove | list | help | value_refused
    kind: Kind | None = None
    hook: str | None = None
    name: str | None = None


# ``action:{id}``, or with a policy file ``tenant/action:{id}`` (CONTRACT §6).
ACTION_KEY = re.compile(rf"^([a-z0-9-]{{1,32}}/)?{ACTION_PREFIX}[A-Za-z0-9-]{{1,64}}$")


def parse_command(text: str) -> Command:
    """Split the command text; anything that may carry a value is refused, never echoed."""
    if len(text) > COMMAND_TEXT_MAX:
        return Command("value_refused")
    try:
        # Hook names may hold spaces: `add "Client Credentials Exchange" API_KEY`.
        words = shlex.split(text)
    except ValueError:  # an unbalanced quote: count plain words instead
        words = text.split()
    if not words:
        return Command("help")
    sub, args = words[0].lower(), words[1:]
    # Checked before the subcommand: a value may follow a typo or stand alone (`/hook-secret K=v`).
    # `action:{id}` names a target; any other ":" may be `NAME:value`.
    looks_like_value = any(
        "=" in w or (":" in w and not (n == 1 and ACTION_KEY.match(w))) for n, w in enumerate(words)
    )
    limit = 1 if sub == "list" else 2
    if looks_like_value or len(args) > limit:
        return Command("value_refused")
    if sub not in (*SUBCOMMANDS, "list"):
        return Command("help")
    if sub == "list":
        return Command("list", hook=args[0] if args else None)
    return Command(
        sub if sub != "rotate" else "update",
        SUBCOMMANDS[sub],
        hook=args[0] if args else None,
        name=args[1] if len(args) > 1 else None,
    )


@dataclass(frozen=True)
class RequestForm:
    """The request modal's fields as submitted."""

    target: str | None  # the picked option's value: a hook id or ``action:`` and an id
    target_label: str | None
    secret_name: str
    value: SecretStr | None
    reason: str


def parse_form(view: dict[str, Any]) -> RequestForm:
    """Read the request modal's state; the value goes straight into a SecretStr."""
    values = view.get("state", {}).get("values", {})

    def text(block: str) -> str | None:
        field = values.get(block, {}).get(block) or {}
        value = field.get("value")
        return value if isinstance(value, str) else None

    selected = (values.get(ids.BLOCK_HOOK, {}).get(ids.BLOCK_HOOK) or {}).get("selected_option")
    raw_value = text(ids.BLOCK_SECRET_VALUE)
    return RequestForm(
        target=selected.get("value") if selected else None,
        target_label=(selected.get("text") or {}).get("text") if selected else None,
        secret_name=(text(ids.BLOCK_SECRET_NAME) or "").strip(),
        value=SecretStr(raw_value) if raw_value is not None else None,
        reason=(text(ids.BLOCK_REASON) or "").strip(),
    )


def form_errors(form: RequestForm, kind: Kind, require_reason: bool) -> dict[str, str]:
    """Problems found without asking Auth0, keyed by block id."""
    errors: dict[str, str] = {}
    if not form.target or TargetRef.parse(form.target) is None:
        errors[ids.BLOCK_HOOK] = "Choose a hook from the list."
    name = form.secret_name
    if not name:
        errors[ids.BLOCK_SECRET_NAME] = "Enter a secret name."
    elif len(name) > NAME_MAX:
        errors[ids.BLOCK_SECRET_NAME] = f"At most {NAME_MAX} characters."
    elif not SECRET_NAME.match(name):
        errors[ids.BLOCK_SECRET_NAME] = (
            "Use letters, digits, _ and -, starting with a letter or _ (e.g. API_KEY)."
        )
    if kind is not Kind.REMOVE:
        problem = value_problem(form.value)
        if problem:
            errors[ids.BLOCK_SECRET_VALUE] = problem
    if require_reason and not form.reason:
        errors[ids.BLOCK_REASON] = "Say why, for the approver and the audit trail."
    elif len(form.reason) > REASON_MAX:
        errors[ids.BLOCK_REASON] = f"At most {REASON_MAX} characters."
    elif "\x00" in form.reason:
        errors[ids.BLOCK_REASON] = NUL_IN_TEXT
    elif not fits_typed(REASON_LABEL, form.reason):
        errors[ids.BLOCK_REASON] = TOO_LONG_SHOWN
    errors.update(_value_elsewhere(form))
    return errors


def _value_elsewhere(form: RequestForm) -> dict[str, str]:
    """The value pasted into the name or reason too: those are shown and kept in clear."""
    raw = form.value.get_secret_value() if form.value is not None else ""
    if len(raw.strip()) < VALUE_ECHO_MIN:  # short values match ordinary words by chance
        return {}
    fields = {ids.BLOCK_SECRET_NAME: form.secret_name, ids.BLOCK_REASON: form.reason}
    return {block: VALUE_ECHOED for block, text in fields.items() if raw in text}


def comment_problem(comment: str | None) -> str | None:
    """Why a decision comment can't be recorded, or None."""
    if comment is None:
        return None
    if "\x00" in comment:
        return NUL_IN_TEXT
    return None if fits_typed(COMMENT_LABEL, comment) else TOO_LONG_SHOWN


def value_problem(value: SecretStr | None) -> str | None:
    """Why a secret value can't be used, or None; never quotes the value."""
    raw = value.get_secret_value() if value is not None else ""
    if not raw or not raw.strip():
        return "Enter the secret value (it can't be blank)."
    if len(raw) > VALUE_MAX:
        return f"At most {VALUE_MAX} characters."
    if raw == VALUE_PLACEHOLDER:
        return f"{VALUE_PLACEHOLDER} is Auth0's placeholder for hidden values, not a value."
    if "\x00" in raw:
        return "The value contains a NUL character, which Auth0 can't store."
    return None
