"""Block Kit validation: the limits Slack enforces, reported in Slack's message format."""

from __future__ import annotations

from typing import Any, Final

from standins.slack.records import (
    JSON,
    MAX_MESSAGE_BLOCKS,
    MAX_VIEW_BLOCKS,
    new_id,
)

# ---------------------------------------------------------------------------
# Block Kit validation: the limits Slack enforces, reported in Slack's message format.


class _Problems:
    """Collects ``[ERROR] … [json-pointer:…]`` lines as Slack reports them."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, message: str, pointer: str) -> None:
        self.items.append(f"[ERROR] {message} [json-pointer:{pointer}]")

    def max_len(self, value: object, limit: int, pointer: str) -> None:
        if isinstance(value, str) and len(value) > limit:
            self.add(f"must be less than {limit + 1} characters", pointer)

    def max_items(self, value: object, limit: int, pointer: str) -> None:
        if isinstance(value, list) and len(value) > limit:
            self.add(f"no more than {limit} items allowed", pointer)


def _check_text(
    p: _Problems,
    obj: object,
    ptr: str,
    *,
    limit: int,
    plain_only: bool = False,
    required: bool = True,
) -> None:
    if obj is None:
        if required:
            field_name = ptr.rsplit("/", 1)[-1]
            p.add(f"missing required field: {field_name}", ptr.rsplit("/", 1)[0] or "/")
        return
    if not isinstance(obj, dict):
        p.add("must be an object", ptr)
        return
    kind = obj.get("type")
    if plain_only and kind != "plain_text":
        p.add("must be a plain_text text object", f"{ptr}/type")
    elif kind not in ("plain_text", "mrkdwn"):
        p.add("must be one of 'plain_text', 'mrkdwn'", f"{ptr}/type")
    text = obj.get("text")
    if not isinstance(text, str):
        p.add("missing required field: text", ptr)
        return
    if not text:
        p.add("must be more than 0 characters", f"{ptr}/text")
    p.max_len(text, limit, f"{ptr}/text")


def _check_option(p: _Problems, option: object, ptr: str, *, plain_only: bool = True) -> None:
    if not isinstance(option, dict):
        p.add("must be an object", ptr)
        return
    _check_text(p, option.get("text"), f"{ptr}/text", limit=75, plain_only=plain_only)
    value = option.get("value")
    if not isinstance(value, str) or not value:
        p.add("missing required field: value", ptr)
    p.max_len(value, 150, f"{ptr}/value")
    _check_text(
        p,
        option.get("description"),
        f"{ptr}/description",
        limit=75,
        plain_only=plain_only,
        required=False,
    )


def _check_options(
    p: _Problems, element: JSON, ptr: str, *, limit: int, required: bool, plain_only: bool = True
) -> None:
    options, groups = element.get("options"), element.get("option_groups")
    if options is None and groups is None:
        if required:
            p.add("must provide either options or option_groups", ptr)
        return
    if options is not None:
        if not isinstance(options, list):
            p.add("must be an array", f"{ptr}/options")
            return
        p.max_items(options, limit, f"{ptr}/options")
        for i, option in enumerate(options):
            _check_option(p, option, f"{ptr}/options/{i}", plain_only=plain_only)
    if isinstance(groups, list):
        p.max_items(groups, 100, f"{ptr}/option_groups")
        for g, group in enumerate(groups):
            gptr = f"{ptr}/option_groups/{g}"
            if not isinstance(group, dict):
                p.add("must be an object", gptr)
                continue
            _check_text(p, group.get("label"), f"{gptr}/label", limit=75, plain_only=True)
            group_options = group.get("options")
            p.max_items(group_options, 100, f"{gptr}/options")
            for i, option in enumerate(group_options if isinstance(group_options, list) else []):
                _check_option(p, option, f"{gptr}/options/{i}")


TEXT_INPUTS: Final = frozenset(
    {"plain_text_input", "email_text_input", "url_text_input", "number_input"}
)
_SELECTS: Final = frozenset(
    {
        "static_select",
        "external_select",
        "users_select",
        "conversations_select",
        "channels_select",
        "multi_static_select",
        "multi_external_select",
        "multi_users_select",
        "multi_conversations_select",
        "multi_channels_select",
    }
)
_OTHER_ELEMENTS: Final = frozenset(
    {
        "button",
        "overflow",
        "datepicker",
        "timepicker",
        "datetimepicker",
        "checkboxes",
        "radio_buttons",
        "rich_text_input",
        "file_input",
        "image",
        "workflow_button",
    }
)
_INPUT_ELEMENTS: Final = (TEXT_INPUTS | _SELECTS) | {
    "datepicker",
    "timepicker",
    "datetimepicker",
    "checkboxes",
    "radio_buttons",
    "rich_text_input",
    "file_input",
}
_BLOCK_TYPES: Final = frozenset(
    {
        "section",
        "divider",
        "image",
        "actions",
        "context",
        "input",
        "header",
        "rich_text",
        "video",
        "file",
        "markdown",
        "context_actions",
    }
)


def _check_element(p: _Problems, element: object, ptr: str) -> None:
    if not isinstance(element, dict):
        p.add("must be an object", ptr)
        return
    kind = element.get("type")
    if kind not in TEXT_INPUTS | _SELECTS | _OTHER_ELEMENTS:
        p.add(f"unsupported type: {kind}", f"{ptr}/type")
        return
    p.max_len(element.get("action_id"), 255, f"{ptr}/action_id")
    _check_text(
        p,
        element.get("placeholder"),
        f"{ptr}/placeholder",
        limit=150,
        plain_only=True,
        required=False,
    )
    if kind == "button":
        _check_button(p, element, ptr)
    elif kind in ("static_select", "multi_static_select"):
        _check_options(p, element, ptr, limit=100, required=True)
    elif kind in ("checkboxes", "radio_buttons"):
        # Checkbox and radio options may use mrkdwn text.
        _check_options(p, element, ptr, limit=10, required=True, plain_only=False)
    elif kind == "overflow":
        _check_options(p, element, ptr, limit=5, required=True)
    elif kind in ("external_select", "multi_external_select"):
        initial = element.get("initial_option")
        if initial is not None:
            _check_option(p, initial, f"{ptr}/initial_option")
    elif kind == "plain_text_input":
        _check_text_input(p, element, ptr)


def _check_button(p: _Problems, element: JSON, ptr: str) -> None:
    _check_text(p, element.get("text"), f"{ptr}/text", limit=75, plain_only=True)
    p.max_len(element.get("value"), 2000, f"{ptr}/value")
    p.max_len(element.get("url"), 3000, f"{ptr}/url")
    style = element.get("style")
    if style is not None and style not in ("primary", "danger"):
        p.add("must be one of 'primary', 'danger'", f"{ptr}/style")


def _check_text_input(p: _Problems, element: JSON, ptr: str) -> None:
    for key in ("min_length", "max_length"):
        length = element.get(key)
        if length is None:
            continue
        if not isinstance(length, int) or isinstance(length, bool):
            p.add("must be an integer", f"{ptr}/{key}")
        elif length > 3000:
            p.add("must be less than or equal to 3000", f"{ptr}/{key}")
        elif length < (1 if key == "max_length" else 0):
            p.add("must be greater than 0", f"{ptr}/{key}")
    p.max_len(element.get("initial_value"), 3000, f"{ptr}/initial_value")


def _check_block(p: _Problems, block: object, ptr: str, *, surface: str) -> None:
    if not isinstance(block, dict):
        p.add("must be an object", ptr)
        return
    kind = block.get("type")
    if kind not in _BLOCK_TYPES:
        p.add(f"unsupported type: {kind}", f"{ptr}/type")
        return
    p.max_len(block.get("block_id"), 255, f"{ptr}/block_id")
    if kind == "section":
        _check_section(p, block, ptr)
    elif kind == "header":
        _check_text(p, block.get("text"), f"{ptr}/text", limit=150, plain_only=True)
    elif kind == "actions":
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            p.add("must provide at least one element", f"{ptr}/elements")
            return
        p.max_items(elements, 25, f"{ptr}/elements")
        for i, element in enumerate(elements):
            _check_element(p, element, f"{ptr}/elements/{i}")
    elif kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            p.add("must provide at least one element", f"{ptr}/elements")
            return
        p.max_items(elements, 10, f"{ptr}/elements")
        for i, element in enumerate(elements):
            if isinstance(element, dict) and element.get("type") in ("plain_text", "mrkdwn"):
                _check_text(p, element, f"{ptr}/elements/{i}", limit=3000)
    elif kind == "input":
        _check_input(p, block, ptr)


def _check_section(p: _Problems, block: JSON, ptr: str) -> None:
    text, fields = block.get("text"), block.get("fields")
    if text is None and fields is None:
        p.add("must provide either text or fields", ptr)
    _check_text(p, text, f"{ptr}/text", limit=3000, required=False)
    p.max_items(fields, 10, f"{ptr}/fields")
    for i, item in enumerate(fields if isinstance(fields, list) else []):
        _check_text(p, item, f"{ptr}/fields/{i}", limit=2000)
    if block.get("accessory") is not None:
        _check_element(p, block["accessory"], f"{ptr}/accessory")


def _check_input(p: _Problems, block: JSON, ptr: str) -> None:
    _check_text(p, block.get("label"), f"{ptr}/label", limit=2000, plain_only=True)
    _check_text(p, block.get("hint"), f"{ptr}/hint", limit=2000, plain_only=True, required=False)
    element = block.get("element")
    if element is None:
        p.add("missing required field: element", ptr)
    elif isinstance(element, dict) and element.get("type") not in _INPUT_ELEMENTS:
        p.add(f"unsupported type for an input block: {element.get('type')}", f"{ptr}/element")
    else:
        _check_element(p, element, f"{ptr}/element")


def _check_blocks(p: _Problems, blocks: object, ptr: str, *, limit: int, surface: str) -> None:
    if not isinstance(blocks, list):
        p.add("must be an array", ptr)
        return
    p.max_items(blocks, limit, ptr)
    seen: set[str] = set()
    for i, block in enumerate(blocks):
        _check_block(p, block, f"{ptr}/{i}", surface=surface)
        block_id = block.get("block_id") if isinstance(block, dict) else None
        if isinstance(block_id, str):
            if block_id in seen:
                p.add(f"duplicate block_id: {block_id}", f"{ptr}/{i}/block_id")
            seen.add(block_id)


def validate_view(view: object, *, kind: str = "modal", pointer: str = "/view") -> list[str]:
    """Return Slack's error lines for a view (empty when Slack would accept it)."""
    p = _Problems()
    if not isinstance(view, dict):
        p.add("must be an object", pointer)
        return p.items
    if view.get("type") != kind:
        p.add(f"must be '{kind}'", f"{pointer}/type")
    if kind == "modal":
        _check_text(p, view.get("title"), f"{pointer}/title", limit=24, plain_only=True)
    for button in ("submit", "close"):
        _check_text(
            p, view.get(button), f"{pointer}/{button}", limit=24, plain_only=True, required=False
        )
    blocks = view.get("blocks")
    if blocks is None:
        p.add("missing required field: blocks", pointer)
    else:
        _check_blocks(p, blocks, f"{pointer}/blocks", limit=MAX_VIEW_BLOCKS, surface=kind)
    has_input = isinstance(blocks, list) and any(
        isinstance(b, dict) and b.get("type") == "input" for b in blocks
    )
    if kind == "modal" and has_input and view.get("submit") is None:
        p.add("must provide a submit property when using input blocks", pointer)
    p.max_len(view.get("private_metadata"), 3000, f"{pointer}/private_metadata")
    p.max_len(view.get("callback_id"), 255, f"{pointer}/callback_id")
    p.max_len(view.get("external_id"), 255, f"{pointer}/external_id")
    return p.items


def validate_message_blocks(blocks: object, *, pointer: str = "/blocks") -> list[str]:
    """Return Slack's error lines for the blocks of a message (empty when acceptable)."""
    p = _Problems()
    _check_blocks(p, blocks, pointer, limit=MAX_MESSAGE_BLOCKS, surface="message")
    return p.items


def validate_options_response(body: object) -> list[str]:
    """Return what Slack would reject in an options-load (block_suggestion) response."""
    p = _Problems()
    if not isinstance(body, dict) or ("options" not in body and "option_groups" not in body):
        p.add("must provide either options or option_groups", "/")
        return p.items
    _check_options(p, body, "", limit=100, required=True)
    return p.items


def fill_ids(blocks: list[Any]) -> None:
    """Give blocks and elements without ids random ones, as Slack does."""
    for block in blocks:
        if not isinstance(block, dict):
            continue
        block.setdefault("block_id", new_id("", 5))
        elements: list[Any] = []
        for key in ("element", "accessory"):
            if isinstance(block.get(key), dict):
                elements.append(block[key])
        if block.get("type") == "actions" and isinstance(block.get("elements"), list):
            elements.extend(block["elements"])
        for element in elements:
            if isinstance(element, dict) and element.get("type") in (
                TEXT_INPUTS | _SELECTS | _OTHER_ELEMENTS
            ) - {"image"}:
                element.setdefault("action_id", new_id("", 5))


# ---------------------------------------------------------------------------
# Records
