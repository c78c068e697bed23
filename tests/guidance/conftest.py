"""A hospital for guidance: the world's 内科 plus a few departments with their own age and
sex rules, and no ENT department at all."""

from __future__ import annotations

from dataclasses import dataclass

import pytest_asyncio

from tests import factories as f
from tests.conftest import World
from yuyue.scheduling.models import Department
from yuyue.web.context import AppContext


@dataclass
class Departments:
    internal: Department
    cardiology: Department
    neurology: Department
    paediatrics: Department
    gynaecology: Department
    andrology: Department
    emergency: Department


@pytest_asyncio.fixture
async def departments(ctx: AppContext, world: World) -> Departments:
    async with ctx.db.session_scope() as s:
        hospital = world.hospital

        async def make(name: str, **rules: object) -> Department:
            return await f.make_department(s, hospital=hospital, name=name, **rules)  # type: ignore[arg-type]

        made = Departments(
            internal=world.department,
            cardiology=await make("心血管内科"),
            neurology=await make("神经内科"),
            paediatrics=await make("儿科", max_age=14),
            gynaecology=await make("妇科", sex="F"),
            andrology=await make("男科", min_age=18, sex="M"),
            emergency=await make("急诊科"),
        )
    return made


# The patient's browser over ASGI, anonymous and signed in, as the portal tests use it.
from tests.portal.conftest import portal, signed_in  # noqa: E402, F401
