"""The target pickers' options: hooks and actions as the request form and ``list`` offer them."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import Option, OptionGroup

from bot.slack import ids
from bot.slack.text import cut
from bot.targets import Described, Offer, TargetKind

# Slack shows at most 100 options, each label at most 75 characters.
MAX_OPTIONS = 100
LABEL_MAX = 75
GROUP_LABELS = {TargetKind.ACTION: "Actions", TargetKind.HOOK: "Hooks"}


def hook_label(hook: Described) -> str:
    """Option text for a hook or action: its name and trigger, within Slack's 75 characters."""
    label = f"{hook.name} ({hook.trigger_id})"
    if not hook.enabled:
        label += " [disabled]"
    return cut(label, LABEL_MAX)


def hook_option(hook: Described) -> Option:
    """A select option whose value is the Auth0 hook id, or ``action:`` and the action id."""
    return Option(text=hook_label(hook), value=hook.ref.key)


def target_options(offers: list[Offer], by_tenant: bool = False) -> dict[str, Any]:
    """The picker's options load: groups ``Actions`` and ``Hooks`` when the tenant offers
    actions (a kind it lacks says why in its group); a plain hook list when it offers none.
    ``by_tenant`` (a policy file): groups ``{tenant} · Actions`` and ``{tenant} · Hooks``."""
    if by_tenant:
        return _tenant_groups(offers)
    actions = next((o for o in offers if o.kind is TargetKind.ACTION), None)
    hooks = next((o for o in offers if o.kind is TargetKind.HOOK), None)
    if actions is None or not actions.targets:
        shown = hooks.targets if hooks else []
        return {"options": [hook_option(h).to_dict() for h in shown[:MAX_OPTIONS]]}
    groups = []
    for offer in (actions, hooks):
        if offer is None:
            continue
        options = [hook_option(t) for t in offer.targets[:MAX_OPTIONS]]
        if not options:
            options = [unavailable_option(f"no hooks: {offer.missing or 'none'}")]
        groups.append(OptionGroup(label=GROUP_LABELS[offer.kind], options=options).to_dict())
    return {"option_groups": groups}


def unavailable_option(reason: str) -> Option:
    """The one option shown when Auth0 can't list hooks: not a hook id, so choosing it asks
    for a hook again."""
    return Option(text=f"Auth0: {reason}"[:LABEL_MAX], value=ids.OPTION_UNAVAILABLE)


def _tenant_groups(offers: list[Offer]) -> dict[str, Any]:
    """A group per tenant and kind, tenants in the policy's order, actions before hooks; a
    kind a tenant can't list says why, a kind with nothing this person may request is left
    out (CONTRACT §6)."""
    tenants = list(dict.fromkeys(o.tenant for o in offers))
    groups = []
    for tenant in tenants:
        for kind in (TargetKind.ACTION, TargetKind.HOOK):
            offer = next((o for o in offers if o.tenant == tenant and o.kind is kind), None)
            if offer is None:
                continue
            options = [hook_option(t) for t in offer.targets[:MAX_OPTIONS]]
            if not options and offer.missing:
                option = unavailable_option(f"no {kind}s: {offer.missing}")
                option.value = f"{tenant}/{kind}{ids.OPTION_UNAVAILABLE}"  # unique, no target
                options = [option]
            if options:
                label = f"{tenant} · {GROUP_LABELS[kind]}"
                groups.append(OptionGroup(label=label, options=options).to_dict())
    if not groups:
        return {"options": []}
    return {"option_groups": groups[:MAX_OPTIONS]}
