"""Seals: what they cover, rotation, the key derivation, refusals, and where the key file lives."""

from __future__ import annotations

import base64
import hmac
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from bot.approvals.seals import SEALED, TAMPERED, Guard, Sealer, facts
from bot.approvals.states import Kind, State
from bot.db.encryption import Vault, generate_key, key_file_for, seal_key
from bot.db.models import SecretRequest
from bot.metrics import Metrics
from bot.serve.runtime import open_vault
from bot.settings import Mode, SettingsError, StoreSettings, load_settings
from bot.targets import TargetKind

NOW = datetime(2026, 1, 1, tzinfo=UTC)
# A different value for every sealed fact, of the type the row holds.
CHANGED: dict[str, object] = {
    "id": "hsr_other",
    "team_id": "T0OTHER",
    "tenant": "other",
    "target_kind": TargetKind.ACTION,
    "target_id": "h2",
    "secret_name": "OTHER",
    "kind": Kind.UPDATE,
    "value_ciphertext": b"another ciphertext",
    "requester": "U0OTHER",
    "required_approvals": 0,
    "decided_by": "U0APP2",
    "state": State.PENDING,
}


def _request(**values: object) -> SecretRequest:
    row: dict[str, object] = {
        "id": "hsr_0123456789abcdef",
        "kind": Kind.ADD,
        "target_kind": TargetKind.HOOK,
        "tenant": "default",
        "state": State.APPROVED,
        "team_id": "T0TEAM",
        "requester": "U0REQ",
        "origin_channel": "C0GENERAL",
        "target_id": "h1",
        "target_name": "Hook",
        "secret_name": "API_KEY",
        "value_ciphertext": b"ciphertext",
        "required_approvals": 1,
        "decided_by": "U0APP",
        "created_at": NOW,
        "expires_at": NOW + timedelta(days=1),
    }
    return SecretRequest(**{**row, **values})


def test_every_sealed_fact_is_covered() -> None:
    """Changing any one sealed fact breaks the seal; facts an apply does not act on don't."""
    assert set(CHANGED) == set(SEALED)
    sealer = Sealer([seal_key(generate_key())])
    request = _request()
    request.seal = sealer.seal(request)
    assert sealer.verify(request)
    for name, value in CHANGED.items():
        changed = _request(**{name: value}, seal=request.seal)
        assert not sealer.verify(changed), name
    assert sealer.verify(_request(reason="edited", target_name="Renamed", seal=request.seal))


def test_a_seal_is_computed_for_the_row_as_an_update_leaves_it() -> None:
    """``seal(request, **changes)`` seals the row after the update (other keys ignored)."""
    sealer = Sealer([seal_key(generate_key())])
    pending = _request(state=State.PENDING, decided_by=None)
    changes = {"decided_by": "U0APP", "decided_at": NOW, "decision_comment": "ok"}
    approved = _request(seal=sealer.seal(pending, state=State.APPROVED, **changes))
    assert sealer.verify(approved)
    assert facts(approved) == facts(pending, state=State.APPROVED, **changes)


def test_rotation_verifies_under_every_key_and_seals_under_the_newest() -> None:
    old, new = generate_key(), generate_key()
    before = Vault([old])
    request = _request()
    request.seal = Sealer(before.seal_keys).seal(request)
    rotated = Sealer(Vault([new, old]).seal_keys)
    assert rotated.verify(request)
    assert not Sealer(Vault([new]).seal_keys).verify(request)
    resealed = _request(seal=rotated.seal(request))
    assert Sealer([seal_key(new)]).verify(resealed)
    assert not Sealer([seal_key(old)]).verify(resealed)


def test_the_seal_key_is_derived_and_never_the_encryption_key() -> None:
    """HKDF under its own label: stable for a key, differs per key, shares nothing with the
    Fernet key's halves or the fingerprint key."""
    key = generate_key()
    derived = seal_key(key)
    raw = base64.urlsafe_b64decode(key)
    assert derived == seal_key(key) and len(derived) == 32
    assert derived != seal_key(generate_key())
    assert derived not in (raw, raw[:16], raw[16:])
    fingerprint = hmac.new(key.encode(), b"hook-secret-bot fingerprint", "sha256").digest()
    assert derived != fingerprint
    Fernet(key)  # the key itself is untouched


def test_guard_refuses_unsealed_and_broken_rows_and_counts_them() -> None:
    key = generate_key()
    sealer, vault = Sealer([seal_key(key)]), Vault([key])
    guard = Guard(sealer, vault.made_by_a_key)
    counted: list[str] = []
    guard.on_refused = counted.append
    value = vault.encrypt(SecretStr("s3cr3t-seal-value"))
    good = _request(value_ciphertext=value)
    good.seal = sealer.seal(good)
    assert guard.refusal(good) is None
    for seal in (None, "v1:" + "0" * 64, "garbage"):
        error = guard.refusal(_request(value_ciphertext=value, seal=seal))
        assert error is not None and error.reason == TAMPERED
    assert counted == [TAMPERED] * 3


def test_a_value_no_configured_key_made_is_refused_as_undecryptable() -> None:
    """A key removed from HOOK_SECRET_ENCRYPTION_KEY: the seal fails beside a value no key
    made; the refusal says undecryptable (what an operator can act on), not tampered."""
    old, new = generate_key(), generate_key()
    row = _request(value_ciphertext=Vault([old]).encrypt(SecretStr("s3cr3t-old-value")))
    row.seal = Sealer([seal_key(old)]).seal(row)
    guard = Guard(Sealer([seal_key(new)]), Vault([new]).made_by_a_key)
    error = guard.refusal(row)
    assert error is not None and error.reason == "undecryptable"


def test_guard_checks_the_requester_once_the_seal_verifies() -> None:
    sealer = Sealer([seal_key(generate_key())])
    guard = Guard(sealer, lambda token: True)
    asked: list[tuple[str, str, bool]] = []

    def may_request(request: SecretRequest, fresh: bool) -> bool:
        asked.append((request.requester, request.team_id, fresh))
        return False

    guard.may_request = may_request
    request = _request()
    request.seal = sealer.seal(request)
    error = guard.refusal(request, fresh=True)
    assert error is not None and error.reason == "requester_not_allowed"
    assert asked == [("U0REQ", "T0TEAM", True)]
    asked.clear()
    assert guard.refusal(_request()) is not None and asked == []  # tampered: not asked


def test_refusals_are_a_metric() -> None:
    metrics = Metrics()
    metrics.observe_refused(TAMPERED)
    metrics.observe_refused(TAMPERED)
    value = metrics.registry.get_sample_value(
        "hook_secret_bot_refused_requests_total", {"outcome": TAMPERED}
    )
    assert value == 2


def _store_settings(**values: str) -> StoreSettings:
    return load_settings(Mode.STORE, _env_file=None, **values)


def test_key_file_defaults_beside_the_database_and_can_be_set(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    assert key_file_for(url) == tmp_path / "bot.key"
    elsewhere = tmp_path / "keys" / "bot.key"
    elsewhere.parent.mkdir()
    settings = _store_settings(database_url=url, hook_secret_key_file=str(elsewhere))
    assert settings.hook_secret_key_file == elsewhere
    vault = open_vault(settings)
    assert elsewhere.exists() and not (tmp_path / "bot.key").exists()
    assert (elsewhere.stat().st_mode & 0o777) == 0o600
    token = vault.encrypt(SecretStr("v"))
    assert open_vault(settings).decrypt(token).get_secret_value() == "v"
    assert _store_settings(database_url=url).hook_secret_key_file is None


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"hook_secret_key_file": "{tmp}"}, "is a directory"),
        ({"hook_secret_key_file": "{tmp}/bot.db"}, "must not be the database file"),
        ({"hook_secret_key_file": "{tmp}/bot.db-wal"}, "must not be the database file"),
        ({"hook_secret_key_file": "{tmp}/k", "hook_secret_encryption_key": "KEY"}, "not used"),
        (
            {
                "hook_secret_key_file": "{tmp}/k",
                "database_url": "postgresql+psycopg://u@h/db",
                "hook_secret_encryption_key": "KEY",
            },
            "SQLite only",
        ),
    ],
)
def test_key_file_setting_is_validated(
    tmp_path: Path, values: dict[str, str], problem: str
) -> None:
    filled = {"database_url": f"sqlite:///{tmp_path / 'bot.db'}"}
    key = generate_key()
    for name, value in values.items():
        filled[name] = value.replace("{tmp}", str(tmp_path)).replace("KEY", key)
    with pytest.raises(SettingsError) as caught:
        _store_settings(**filled)
    (line,) = caught.value.problems
    assert line.startswith("HOOK_SECRET_KEY_FILE: ") and problem in line
