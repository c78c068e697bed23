"""Small assertions shared by the database tests."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

from yuyue.kit.db import Database
from yuyue.models import Base
from yuyue.staff.enums import Role


async def row_counts(db: Database) -> dict[str, int]:
    """Rows per table: 'changes nothing' means this is equal before and after."""
    counts: dict[str, int] = {}
    async with db.read() as session:
        for table in Base.metadata.sorted_tables:
            counts[table.name] = int(
                await session.scalar(select(func.count()).select_from(table)) or 0
            )
    return counts


async def pool_state(db: Database) -> list[tuple[Any, ...]]:
    from yuyue.scheduling.models import SlotPool

    async with db.read() as session:
        rows = await session.execute(
            select(SlotPool.id, SlotPool.taken, SlotPool.capacity, SlotPool.is_open).order_by(
                SlotPool.id
            )
        )
        return [tuple(r) for r in rows]


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert isinstance(body["detail"], str) and body["detail"], body
    return body


async def staff_auth(
    client: httpx.AsyncClient, ctx: Any, world: Any, *roles: Role, doctor: Any = None
) -> dict[str, str]:
    """Headers of a freshly created staff user with these roles, signed in over HTTP."""
    from tests import factories as f
    from tests.conftest import NOW

    async with ctx.db.session_scope() as s:
        username = await f.make_staff(
            s, hospital=world.hospital, roles=list(roles), now=NOW, doctor=doctor
        )
    response = await client.post(
        "/api/v1/auth/token",
        json={"hospital": world.hospital.code, "username": username, "password": "secret-pass"},
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}
