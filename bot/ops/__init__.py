"""Operator commands: the command line, check, and the demo."""
