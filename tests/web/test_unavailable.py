"""A saturated or unreachable database is a 503 the client may retry, never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.exc import TimeoutError as PoolTimeout

from tests.conftest import World
from tests.helpers import assert_problem
from yuyue.web.context import AppContext


async def test_a_pool_timeout_is_a_503_with_retry_after(
    client: httpx.AsyncClient, ctx: AppContext, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def saturated(*args: Any, **kwargs: Any) -> Any:
        raise PoolTimeout("QueuePool limit of size 15 overflow 15 reached")

    monkeypatch.setattr(ctx.db, "transact", saturated)
    monkeypatch.setattr(ctx.db, "transact_driver", saturated)
    response = await client.post(
        "/api/v1/appointments",
        json={"patient_id": str(world.patient.id), "session_id": str(world.session.id)},
        headers={**world.auth, "Accept-Language": "en"},
    )
    body = assert_problem(response, 503, "service_unavailable")
    assert response.headers["Retry-After"] == "1"
    assert "nothing was changed" in body["detail"]
