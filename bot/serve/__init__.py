"""Serving: the runtime, gunicorn and Socket Mode, the WSGI edge, deadlines and background pools."""
