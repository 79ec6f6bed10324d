"""The manifest's own instructions match the manifest: the Socket Mode note names every URL line."""

from __future__ import annotations

import re

from tests.harness.process import REPO

NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4}


def test_the_socket_mode_note_names_each_line_with_the_placeholder_url() -> None:
    """The header says how many lines to delete for Socket Mode and names each one."""
    text = (REPO / "manifest.yaml").read_text()
    header = " ".join(line.lstrip("# ") for line in text.splitlines() if line.startswith("#"))
    keys = [
        line.split(":", 1)[0].strip().lstrip("- ")
        for line in text.splitlines()
        if not line.startswith("#") and "https://example.com" in line
    ]
    said = re.search(r"delete the (\w+) lines with https://example\.com", header)
    assert said is not None, header
    assert NUMBERS[said[1]] == len(keys) == 3
    assert all(f"`{key}`" in header for key in keys), (keys, header)
