"""``python -m bot.serve.master PORT LOG_LEVEL LOG_FORMAT``: the gunicorn master ``run``
execs into."""

from bot.serve.server import main

# Run as a module of its own, so that bot.serve.server keeps its name in every log line.
main()
