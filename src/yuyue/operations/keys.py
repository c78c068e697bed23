"""Master-secret rotation: which secret sealed the stored values, and what a rotation must do.

The columns come from the contexts that own them (each context's `sealed_columns()`); the
`yuyue keys` commands count and re-seal them batch by batch (docs/operations.md, "Keys").
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.kit import rekey
from yuyue.kit.crypto import LEGACY_VERSION, FieldCipher
from yuyue.notifications import service as notifications_service
from yuyue.patients import service as patients_service
from yuyue.payments import insurance_service
from yuyue.staff import service as staff_service


def sealed_columns() -> list[rekey.SealedColumn]:
    """Every column holding field-cipher tokens: identity numbers and phones first."""
    return [
        *patients_service.sealed_columns(),
        *notifications_service.sealed_columns(),
        *insurance_service.sealed_columns(),
        *staff_service.sealed_columns(),
    ]


@dataclass(frozen=True)
class ColumnKeys:
    """How many values of one column each key sealed ("v1": before key ids existed)."""

    label: str
    counts: dict[str, int]

    def not_current(self, cipher: FieldCipher) -> int:
        return sum(n for key, n in self.counts.items() if key != cipher.key_id)


async def status(session: AsyncSession) -> list[ColumnKeys]:
    return [
        ColumnKeys(sealed.label, await rekey.count_by_key(session, sealed))
        for sealed in sealed_columns()
    ]


@dataclass(frozen=True)
class UnknownKeyUse:
    label: str
    key: str
    count: int


def unknown_keys(columns: list[ColumnKeys], cipher: FieldCipher) -> list[UnknownKeyUse]:
    """Values that name a secret this process is not configured with: a rotation could not
    open them, so it refuses before changing anything. "v1" values name no secret; whether
    one opens them shows only when they are decrypted."""
    known = {*cipher.key_ids, LEGACY_VERSION}
    return [
        UnknownKeyUse(column.label, key, count)
        for column in columns
        for key, count in sorted(column.counts.items())
        if key not in known
    ]
