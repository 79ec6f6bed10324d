"""The demo's mrkdwn renderer: what Slack shows a reader, as plain or ANSI terminal text."""

from __future__ import annotations

from datetime import UTC, timedelta, timezone

import pytest

from standins.mrkdwn import BOLD, ITALIC, RESET, Renderer

NAMES = {"U0RITA": "rita", "C0OPS": "ops"}


def md(*, ansi: bool = False) -> Renderer:
    return Renderer(
        lambda u: NAMES.get(u, u.lower()), lambda c: NAMES.get(c, "?"), ansi=ansi, tz=UTC
    )


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("by <@U0RITA>.", "by @rita."),
        ("<@U0NEW|newcomer> joined", "@newcomer joined"),
        ("in <#C0OPS> and <#C0X|random>", "in #ops and #random"),
        ("<!subteam^S0SEC|@security> and <!subteam^S0ENG>", "@security and @S0ENG"),
        ("<!here> look", "@here look"),
        (
            "see <https://example.com/a|the docs> or <https://example.com>",
            "see the docs (https://example.com/a) or https://example.com",
        ),
        (":white_check_mark: Added, :no_entry: no, :x:", "✅ Added, ⛔ no, ❌"),
        (":not_an_emoji: at 18:37:29", ":not_an_emoji: at 18:37:29"),
        ("*Hook:* x, _why_ and ~old~", "Hook: x, why and old"),
        ("VENDOR_API_KEY, snake_case_name, 2*3*4", "VENDOR_API_KEY, snake_case_name, 2*3*4"),
        ("id `*not bold* <@U0RITA> :x:` kept", "id *not bold* <@U0RITA> :x: kept"),
        ("a &lt;b&gt; &amp; c", "a <b> & c"),
        (
            "expires <!date^1764614249^{date_short_pretty} at {time}|2025-12-01T18:37:29+00:00>.",
            "expires Mon 1 Dec 2025, 18:37 UTC.",
        ),
        ("<!date^soon^{time}|in a while>", "in a while"),
    ],
)
def test_plain_rendering(text: str, shown: str) -> None:
    assert md().render(text) == shown


def test_ansi_styles_bold_and_italic_only_outside_code() -> None:
    shown = md(ansi=True).render("*Hook:* _why_ `*x*`")
    assert shown == f"{BOLD}Hook:{RESET} {ITALIC}why{RESET} *x*"


def test_dates_in_the_readers_zone() -> None:
    paris = Renderer(str, str, tz=timezone(timedelta(hours=1), "CET"))
    assert paris.date(1764614249) == "Mon 1 Dec 2025, 19:37 CET"
