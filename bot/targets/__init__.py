"""The seam to "the thing holding secrets": one interface, one implementation per kind."""

from bot.targets.actions import ActionTarget
from bot.targets.base import (
    DEFAULT_TENANT,
    Applied,
    Change,
    Described,
    Inventory,
    NoProgress,
    Offer,
    Progress,
    Target,
    TargetKind,
    TargetRef,
    Targets,
)
from bot.targets.hooks import HookTarget
from bot.targets.locks import TargetLocks

__all__ = [
    "DEFAULT_TENANT",
    "ActionTarget",
    "Applied",
    "Change",
    "Described",
    "HookTarget",
    "Inventory",
    "NoProgress",
    "Offer",
    "Progress",
    "Target",
    "TargetKind",
    "TargetLocks",
    "TargetRef",
    "Targets",
]
