"""Re-sealing stored field-cipher tokens under the current master secret (key rotation).

Each context that stores tokens describes its columns as :class:`SealedColumn` values (and
how a row's blind indexes follow from the plaintext); the `yuyue keys` commands count and
re-seal them through the functions here. A batch is read in one short transaction and
written in another with one conditional UPDATE per row (`WHERE id = … AND column = <the
token read>`): no row lock is held while tokens are decrypted, and a row someone changed in
between is left alone (it is already sealed under the current secret, or the next run takes
it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, inspect, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.kit.crypto import LEGACY_VERSION, FieldCipher
from yuyue.kit.db import Base

# How a row's blind indexes follow from the plaintext of its sealed column (and the other
# columns it names in `reads`): {index column: value under the current secret}.
Reindex = Callable[[FieldCipher, str, Mapping[str, Any]], Mapping[str, str]]


@dataclass(frozen=True)
class SealedColumn:
    """A column holding field-cipher tokens, and the blind indexes written with it."""

    model: type[Base]
    column: str
    reads: tuple[str, ...] = ()
    reindex: Reindex | None = None

    @property
    def label(self) -> str:
        return f"{self.model.__tablename__}.{self.column}"

    @property
    def _primary_key(self) -> Any:
        (key,) = inspect(self.model).primary_key
        return getattr(self.model, key.name)

    @property
    def _sealed(self) -> Any:
        return getattr(self.model, self.column)


class RotationStopped(Exception):
    """A stored token the configured secrets cannot open: nothing of its batch is written."""


@dataclass(frozen=True)
class PendingRow:
    key: Any
    token: str
    values: Mapping[str, Any]


@dataclass(frozen=True)
class Change:
    key: Any
    old_token: str
    new_values: Mapping[str, str]


async def count_by_key(session: AsyncSession, sealed: SealedColumn) -> dict[str, int]:
    """How many tokens of the column each key id sealed ("v1": from before key ids)."""
    token = sealed._sealed
    key = case(
        (func.substr(token, 1, len(LEGACY_VERSION) + 1) == f"{LEGACY_VERSION}.", LEGACY_VERSION),
        else_=func.substr(token, 2, 8),
    ).label("key")
    named = select(key).where(token.is_not(None)).subquery()
    rows = await session.execute(select(named.c.key, func.count()).group_by(named.c.key))
    return {str(name): int(count) for name, count in rows}


async def pending(
    session: AsyncSession,
    sealed: SealedColumn,
    *,
    cipher: FieldCipher,
    after: Any | None,
    limit: int,
) -> list[PendingRow]:
    """The next rows (in key order, after `after`) whose token is not under the current
    secret."""
    token = sealed._sealed
    primary_key = sealed._primary_key
    prefix = cipher.current_prefix
    query = (
        select(primary_key, token, *(getattr(sealed.model, name) for name in sealed.reads))
        .where(token.is_not(None), func.substr(token, 1, len(prefix)) != prefix)
        .order_by(primary_key)
        .limit(limit)
    )
    if after is not None:
        query = query.where(primary_key > after)
    rows = await session.execute(query)
    return [
        PendingRow(row[0], row[1], dict(zip(sealed.reads, row[2:], strict=True))) for row in rows
    ]


def reseal(
    sealed: SealedColumn, rows: Sequence[PendingRow], *, cipher: FieldCipher
) -> list[Change]:
    """The new token and blind indexes of each row; refuses the whole batch when one token
    cannot be opened, so nothing half-done is written."""
    changes = []
    for row in rows:
        try:
            plaintext = cipher.decrypt(row.token)
        except ValueError as error:
            raise RotationStopped(
                f"{sealed.label} of row {row.key}: {error}; configure the secret that sealed "
                "it in YUYUE_PREVIOUS_SECRET_KEYS"
            ) from None
        new_values = {sealed.column: cipher.encrypt(plaintext)}
        if sealed.reindex is not None:
            new_values.update(sealed.reindex(cipher, plaintext, row.values))
        changes.append(Change(row.key, row.token, new_values))
    return changes


async def apply(session: AsyncSession, sealed: SealedColumn, changes: Sequence[Change]) -> int:
    """Writes the changes whose row still holds the token that was read; returns how many."""
    written = 0
    for change in changes:
        result = await session.execute(
            update(sealed.model)
            .where(sealed._primary_key == change.key, sealed._sealed == change.old_token)
            .values(change.new_values)
            .execution_options(synchronize_session=False)
        )
        written += result.rowcount  # type: ignore[attr-defined]
    return written
