"""Entry point for ``python -m bot``."""

from bot.ops.cli import main

raise SystemExit(main())
