"""`audit verify [--against FILE]`: the chain checked, then compared with the printed lines."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from bot.db import audit
from bot.db.audit_chain import ChainKeys, chain_keys
from bot.db.audit_witness import Comparison, Kind, Witness, compare, read_witness
from bot.db.encryption import key_file_for
from bot.settings import StoreSettings

EXIT_INTACT = 0
EXIT_BROKEN = 1  # a record is broken, or the trail and the file disagree


@dataclass(frozen=True)
class Verification:
    """What to check the trail with: its keys (if any) and the witness (if given)."""

    keys: ChainKeys | None
    no_key: str  # why there is no key, for the line that says what went unchecked
    witness: Witness | None = None
    witness_name: str = ""

    @classmethod
    def from_settings(cls, settings: StoreSettings, against: Path | None) -> Verification | None:
        """The keys from the settings (never creating a key file) and the witness from
        ``against``; None, after a line on stderr, when that file can't be read."""
        keys = chain_keys(
            settings.encryption_keys,
            settings.database_url,
            create=False,
            key_file=settings.hook_secret_key_file,
        )
        no_key = "HOOK_SECRET_ENCRYPTION_KEY is not set"
        if settings.database_url.startswith("sqlite"):
            no_key += f" and there is no key file at {key_file_for(settings.database_url)}"
        if against is None:
            return cls(keys, no_key)
        try:
            with against.open(encoding="utf-8", errors="replace") as handle:
                witness = read_witness(handle)
        except OSError as error:
            print(f"cannot read {against}: {error.strerror or error}", file=sys.stderr)
            return None
        return cls(keys, no_key, witness, str(against))

    def run(self, session: Session) -> int:
        """Check the chain (and compare with the witness); print one line each; exit status."""
        status = self._chain(audit.verify(session, self.keys))
        if self.witness is not None:
            comparison = compare(audit.export(session), self.witness)
            if comparison.differences:
                status = EXIT_BROKEN
            print(self._compared(comparison, self.witness))
        return status

    def _chain(self, result: audit.VerifyResult) -> int:
        if result.broken_at is not None:
            print(
                f"audit trail BROKEN at record {result.broken_at}: {result.problem} "
                f"({result.checked} records intact before it)"
            )
            return EXIT_BROKEN
        if result.unchecked:
            # Exit 0 as before the chain was keyed (a cron job without the key keeps working),
            # but the line says plainly what a rewrite by someone with the database would pass.
            print(
                f"audit trail NOT fully checked: {result.checked} records linked without a "
                f"break, but the HMACs of the {result.unchecked} keyed ones were not checked "
                f"({self.no_key}): a rewrite with every later hash recomputed would pass"
            )
            return EXIT_INTACT
        unkeyed = (
            f" ({result.unkeyed} of them unkeyed, from before the chain was keyed: a rewrite of "
            "those needs no key)"
            if result.unkeyed and self.keys is not None
            else ""
        )
        print(f"audit trail intact: {result.checked} records{unkeyed}")
        return EXIT_INTACT

    def _compared(self, comparison: Comparison, witness: Witness) -> str:
        ignored = (
            f"{witness.ignored} lines ignored: {witness.not_json} not JSON, "
            f"{witness.not_audit} not audit lines, {witness.no_id} audit lines without an id"
        )
        first = comparison.first
        if first is None:
            return (
                f"audit trail matches {self.witness_name}: {comparison.agreed} records, each "
                f"equal to its printed line ({ignored})"
            )
        return (
            f"audit trail DIFFERS from {self.witness_name} at record {first.seq}: "
            f"{first.describe()}; in all {comparison.count(Kind.NOT_IN_DATABASE)} not in the "
            f"database, {comparison.count(Kind.NOT_IN_FILE)} not in the file, "
            f"{comparison.count(Kind.CHANGED)} changed ({ignored})"
        )
