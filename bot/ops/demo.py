"""``hook-secret-bot demo``: finds the stand-ins of a source checkout and runs their demo."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import TextIO

import bot
from bot.settings import PolicySettings, Settings

# The stand-ins are not part of the installed package (``pip install .`` ships no test
# servers); an editable install from a clone finds them in the checkout beside ``bot/``.
CHECKOUT = Path(bot.__file__).resolve().parents[1]
MISSING = (
    "hook-secret-bot demo needs the local stand-ins of a source checkout: clone the project, "
    "run `pip install -e .` in it, then `hook-secret-bot demo`"
)


def run_demo(out: TextIO | None = None) -> int:
    """Run the local demo; 2 with one line on stderr when the stand-ins are not available."""
    demo = _standins_demo()
    if demo is None:
        sys.stderr.write(MISSING + "\n")
        return 2
    _forget_settings()
    code: int = demo.run_demo(out)
    return code


def _forget_settings() -> None:
    """The demo brings its own settings: a variable set for a real installation (say
    HOOK_SECRET_REQUIRED_APPROVALS=0, or a HOOK_SECRET_POLICY_FILE) must not change the story,
    so none is left to read."""
    names = {name.upper() for name in (*Settings.model_fields, *PolicySettings.model_fields)}
    for variable in [v for v in os.environ if v.upper() in names]:
        del os.environ[variable]


def _standins_demo() -> ModuleType | None:
    try:
        return importlib.import_module("standins.demo")
    except ModuleNotFoundError as exc:
        if exc.name not in ("standins", "standins.demo"):
            raise  # the stand-ins are there but something they need is not: say so
    if not (CHECKOUT / "standins" / "demo.py").is_file():
        return None
    # Appended, not prepended: the checkout's ``bot`` is the one already imported.
    sys.path.append(str(CHECKOUT))
    return importlib.import_module("standins.demo")
