"""The log redactor's registry: bounded whatever runs through it, and it still scrubs."""

from __future__ import annotations

import re
import time

from bot.logs import REDACTED, SecretRegistry


def test_handled_values_are_scrubbed_in_every_encoding_from_fresh_and_sealed_chunks() -> None:
    """Values still waiting to be compiled and values already compiled are both redacted."""
    registry = SecretRegistry(recent=64)
    values = [f"v@lue &=/ {n:03d}" for n in range(40)]  # 2 sealed chunks and 8 fresh values
    registry.register(*values)
    for value in (values[0], values[20], values[39]):
        number = value[-3:]
        for form in (value, f"v%40lue%20%26%3D%2F%20{number}", f"v%40lue+%26%3D%2F+{number}"):
            assert registry.scrub(f"<{form}>") == f"<{REDACTED}>"


def test_registry_stays_bounded_over_many_values_and_token_renewals() -> None:
    """Ten thousand handled values and renewed tokens leave a registry of fixed size."""
    registry = SecretRegistry(recent=256)
    registry.pin("settings-credential-0123")
    for n in range(10_000):
        registry.register(f"handled-value-{n:05d}")
        if n % 100 == 0:
            registry.pin(f"eyJtoken{n:05d}-renewed", slot="auth0-access-token")
    assert registry.size() <= 256 + SecretRegistry.CHUNK
    text = "settings-credential-0123 eyJtoken09900-renewed handled-value-09999 handled-value-00000"
    scrubbed = registry.scrub(text)
    assert scrubbed.split() == [REDACTED, REDACTED, REDACTED, "handled-value-00000"]
    # The first token was replaced in its slot (the JWT shape still covers real ones).
    assert "eyJtoken00000-renewed" in registry.scrub("eyJtoken00000-renewed")


def test_a_value_handled_again_outlives_values_registered_after_it() -> None:
    """A value decrypted to apply hours after its submission is remembered afresh."""
    registry = SecretRegistry(recent=32)
    registry.register("submitted-long-ago-0001")
    for n in range(40):
        registry.register(f"other-value-{n:03d}")
    registry.register("submitted-long-ago-0001")
    for n in range(20):
        registry.register(f"later-value-{n:03d}")
    assert registry.scrub("submitted-long-ago-0001") == REDACTED


def test_a_value_inside_another_is_never_half_printed() -> None:
    """Two values where one contains the other, compiled apart: the whole span is redacted."""
    registry = SecretRegistry(recent=64)
    registry.register("inner-secret")
    registry.register(*(f"filler-{n:03d}" for n in range(SecretRegistry.CHUNK)))
    registry.register("prefix-inner-secret-suffix")
    assert registry.scrub("a prefix-inner-secret-suffix b") == f"a {REDACTED} b"


def test_registering_a_value_is_cheap_with_a_full_registry() -> None:
    """Past its size, a new value costs well under a millisecond on average, not a recompile."""
    registry = SecretRegistry(recent=256)
    registry.register(*(f"warm-value-{n:04d}-0123456789" for n in range(512)))
    started = time.process_time()
    for n in range(512):
        registry.register(f"new-value-{n:04d}-0123456789")
        registry.scrub("an ordinary log line about request hsr_0123456789abcdef")
    per_value = (time.process_time() - started) / 512
    # One pattern of all 256 values took ~30-100 ms to compile; a chunk of 16 takes a few.
    assert per_value < 0.005, per_value
    assert len(re.findall(re.escape(REDACTED), registry.scrub("new-value-0511-0123456789"))) == 1


def test_a_value_that_is_not_valid_unicode_poisons_nothing() -> None:
    """A lone surrogate (valid JSON from Slack) is scrubbed in every form it travels in, and
    every value registered after it, fresh or sealed, is still scrubbed (issue 23.4)."""
    registry = SecretRegistry()
    registry.register("\ud800lone-surrogate")
    registry.pin("\udfffpinned-credential")
    later = [f"later-value-{i:03d}" for i in range(SecretRegistry.CHUNK * 2)]
    for value in later:
        registry.register(value)
    forms = ("\ud800lone-surrogate", "\\ud800lone-surrogate", "%ED%A0%80lone-surrogate")
    for form in (*forms, "\udfffpinned-credential", *later):
        assert registry.scrub(f"<{form}>") == f"<{REDACTED}>"
