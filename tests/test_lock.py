"""Reproducible installs: hash-pinned locks that agree with pyproject.toml, used by CI and the
Procfile platform."""

from __future__ import annotations

import re
import tomllib

from tests.harness.process import REPO

PIN = re.compile(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", re.MULTILINE)


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _pins(filename: str) -> dict[str, str]:
    text = (REPO / filename).read_text()
    pins = {name.lower(): version for name, version in PIN.findall(text)}
    # Every pinned distribution carries at least one hash, and nothing is installed unpinned.
    entries = [block for block in re.split(r"\n(?=\S)", text) if block and block[0] != "#"]
    assert all("==" in e and "--hash=sha256:" in e for e in entries), filename
    assert len(entries) == len(pins)
    return pins


def _declared(extra: str | None = None) -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = project["optional-dependencies"][extra] if extra else project["dependencies"]
    return {_name(requirement) for requirement in requirements}


def test_the_platform_lock_pins_every_runtime_dependency_with_hashes() -> None:
    """requirements.txt pins each dependency of pyproject.toml, hashed, and no test tool."""
    pins = _pins("requirements.txt")
    assert _declared() <= set(pins)
    assert not ({"pytest", "mypy", "ruff"} & set(pins))


def test_the_dev_lock_pins_the_same_versions_plus_the_test_tools() -> None:
    """requirements-dev.lock holds the runtime pins unchanged and the test extra."""
    runtime, dev = _pins("requirements.txt"), _pins("requirements-dev.lock")
    assert {name: dev.get(name) for name in runtime} == runtime
    assert _declared("test") <= set(dev)


def test_ci_and_the_platform_install_from_the_locks() -> None:
    """CI installs the dev lock hash-checked and the project without dependencies; the
    Procfile runs the program the platform's requirements.txt install can start."""
    ci = (REPO / ".ci" / "run").read_text()
    assert "pip install --quiet --require-hashes -r requirements-dev.lock" in ci
    assert "pip install --quiet --no-deps -e ." in ci
    assert "'.[test]'" not in ci
    procfile = (REPO / "Procfile").read_text().splitlines()
    assert procfile == ["web: python -m bot run", "worker: python -m bot run"]
    assert "bash .ci/lock" in (REPO / "README.md").read_text()
