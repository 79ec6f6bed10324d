"""``python -m bot.master PORT LOG_LEVEL LOG_FORMAT``: the gunicorn master ``run`` execs into."""

from bot.server import main

# Run as a module of its own, so that bot.server keeps its name in every log line.
main()
