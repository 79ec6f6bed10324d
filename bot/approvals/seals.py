"""Sealed decisions: what must still hold when a request is approved or applied.

Each fact an apply acts on (request id, workspace, tenant, target, secret name, kind, the value's
ciphertext, requester, required approvals, who decided, and the state that decision authorizes)
carries a MAC under a key derived from HOOK_SECRET_ENCRYPTION_KEY (``Vault.seal_keys``), which
the database never holds. The bot seals a request when it is submitted and at each decision, in
the transaction that writes the row; a row written any other way (straight into the database)
does not verify, and is refused: no Auth0 call, ``request.failed`` with outcome ``tampered``.
Every configured key verifies, so rotating the key keeps open requests valid. Rows written
before seals existed (migration 0008_seals) carry none, and are refused the same way when
approved or applied: nothing tells them from a forged row.

The requester is checked again at the same moments: someone no longer allowed to request gets
``request.failed`` with outcome ``requester_not_allowed`` (unless a resumed action change is
already in the draft its batch deploys: then its record says what happened to it).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from typing import Any

from bot.approvals.results import UNDECRYPTABLE, ApplyError
from bot.db.models import SecretRequest
from bot.logs import get_logger

log = get_logger(__name__)

VERSION = "v1"
TAMPERED = "tampered"
REQUESTER_NOT_ALLOWED = "requester_not_allowed"
BROKEN = (
    "its stored facts do not match their seal under any configured key: the row was changed "
    "outside the bot (or the key that sealed it was removed from HOOK_SECRET_ENCRYPTION_KEY)"
)
UNSEALED = (
    "it carries no seal: it was recorded before this version of the bot (or written straight "
    "into the database), so nothing vouches for it; submit it again"
)
NOT_ALLOWED = "the requester is no longer allowed to request secret changes"
REPLAYED = (
    "it ended before (its outcome is in the audit trail), yet its row is open again: an "
    "earlier copy of the row was written back into the database"
)
# An action change resumed from these phases is in Auth0's draft already (the batch deploys
# it with the others): refusing its requester then would only make its record false.
SENT_PHASES = frozenset({"patched", "deploy_requested", "deployed"})
# The row's attributes a seal covers, in order (the value as a digest of its ciphertext).
SEALED = (
    "id",
    "team_id",
    "tenant",
    "target_kind",
    "target_id",
    "secret_name",
    "kind",
    "value_ciphertext",
    "requester",
    "required_approvals",
    "decided_by",
    "state",
)
# Sealed too when the row has them (every row written since migration 0009): a digest removed
# or changed by a database write fails the seal as any other fact would.
SEALED_IF_SET = ("rule_name", "rule_digest")


def facts(request: SecretRequest, **changes: Any) -> bytes:
    """The sealed facts of ``request`` as it is, or as ``changes`` (the values of the update
    about to be written; other keys are ignored) will leave it."""
    row = {name: changes.get(name, getattr(request, name)) for name in SEALED}
    cipher = row["value_ciphertext"]
    row["value_ciphertext"] = hashlib.sha256(bytes(cipher)).hexdigest() if cipher else None
    plain = [VERSION, *(None if row[n] is None else _plain(row[n]) for n in SEALED)]
    for name in SEALED_IF_SET:
        value = changes.get(name, getattr(request, name, None))
        if value is not None:
            plain += [name, str(value)]
    return json.dumps(plain, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def approval_facts(request: SecretRequest, approver: str) -> bytes:
    """What one approval's seal covers: who approved which request, under which rule."""
    plain = [VERSION, "approval", request.id, approver, request.rule_digest]
    return json.dumps(plain, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _plain(value: object) -> object:
    """A fact as JSON holds it (enums as their value, numbers as numbers)."""
    return value if isinstance(value, int) else str(value)


class Sealer:
    """Seals with the newest key; verifies with every configured key (rotation)."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("at least one seal key is required")
        self._keys = list(keys)

    def seal(self, request: SecretRequest, **changes: Any) -> str:
        """The seal of the row ``request`` becomes with ``changes`` written."""
        return self._mac(self._keys[0], facts(request, **changes))

    def verify(self, request: SecretRequest) -> bool:
        """Whether the row's seal matches its facts under one of the keys."""
        if not request.seal:
            return False
        signed = facts(request)
        return any(hmac.compare_digest(request.seal, self._mac(k, signed)) for k in self._keys)

    def seal_approval(self, request: SecretRequest, approver: str) -> str:
        """The seal of ``approver``'s approval row for ``request``."""
        return self._mac(self._keys[0], approval_facts(request, approver))

    def verify_approval(self, request: SecretRequest, approver: str, seal: str | None) -> bool:
        """Whether an approval row's seal matches under one of the keys."""
        if not seal:
            return False
        signed = approval_facts(request, approver)
        return any(hmac.compare_digest(seal, self._mac(k, signed)) for k in self._keys)

    @staticmethod
    def _mac(key: bytes, signed: bytes) -> str:
        return f"{VERSION}:{hmac.new(key, signed, hashlib.sha256).hexdigest()}"


class Guard:
    """Says why an approval or an apply may not go on (``None``: it may): the seal does not
    verify, or the requester lost the right to request."""

    def __init__(self, sealer: Sealer, made_by_a_key: Callable[[bytes], bool]) -> None:
        self.sealer = sealer
        # Whether a configured key made a stored value (``Vault.made_by_a_key``): a seal that
        # fails beside a value no key made means a key was removed (or garbage was written).
        self.made_by_a_key = made_by_a_key
        # Whether a request's requester may still request its target, under the rule that
        # decides it now (``Policy``; ``fresh``: ask Slack again); ``create_app`` sets it.
        # Unset, as in tests of the state machine alone, the requester is not checked again.
        self.may_request: Callable[[SecretRequest, bool], bool] | None = None
        # Told the outcome of each refusal (a metric).
        self.on_refused: Callable[[str], None] = lambda outcome: None
        # Whether the audit trail records the request's end (``Store.ended``): a sealed row
        # that is open again is an earlier copy written back (a replay). Unset: not checked.
        self.ended: Callable[[str], bool] | None = None

    def seal(self, request: SecretRequest, **changes: Any) -> str:
        """The seal of the row ``request`` becomes with ``changes`` written."""
        return self.sealer.seal(request, **changes)

    def _unverified(self, request: SecretRequest) -> ApplyError:
        """Why a request whose seal does not verify is refused, logged as an error: its
        value was made by no configured key (a key was removed), or it was tampered with."""
        stored = request.value_ciphertext
        keyless = stored is not None and not self.made_by_a_key(bytes(stored))
        log.error(
            "refused a request whose seal does not verify",
            request_id=request.id,
            sealed=bool(request.seal),
            state=request.state,
            value_from_a_configured_key=not keyless,
        )
        if keyless:
            return ApplyError("undecryptable", UNDECRYPTABLE)
        return ApplyError(TAMPERED, UNSEALED if not request.seal else BROKEN)

    def broken(self, request: SecretRequest) -> ApplyError | None:
        """Why ``request``'s seal does not verify, if it does not (logged and counted): for a
        row read again inside a transaction, before the bot seals a decision over its facts."""
        if self.sealer.verify(request):
            return None
        error = self._unverified(request)
        self.on_refused(error.reason)
        return error

    def refusal(self, request: SecretRequest, *, fresh: bool = False) -> ApplyError | None:
        """Why ``request`` may not be approved or applied now, if it may not: logged as an
        error (tampered) or a warning (requester), and counted."""
        if not self.sealer.verify(request):
            error = self._unverified(request)
        elif self.ended is not None and self.ended(request.id):
            error = ApplyError(TAMPERED, REPLAYED)
            log.error("refused a request that ended before (a replayed row)", request_id=request.id)
        elif (
            self.may_request is not None
            and request.apply_phase not in SENT_PHASES
            and not self.may_request(request, fresh)
        ):
            error = ApplyError(REQUESTER_NOT_ALLOWED, NOT_ALLOWED)
            log.warning(
                "refused a request whose requester is no longer allowed",
                request_id=request.id,
                requester=request.requester,
            )
        else:
            return None
        self.on_refused(error.reason)
        return error
