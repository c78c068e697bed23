"""The wording of messages and when they go, as the services keep them: who may set them,
the audit rows, a department's own wording before the hospital's before the default, and
removing a department's wording so the hospital's applies again."""

from __future__ import annotations

import uuid
from datetime import time

import pytest
from sqlalchemy import select

from tests.conftest import NOW, World
from tests.helpers import row_counts
from yuyue.kit.errors import Forbidden, NotFound
from yuyue.notifications import rules, service
from yuyue.notifications.enums import MessageKind as K
from yuyue.notifications.templates import default_template
from yuyue.staff.enums import Role
from yuyue.staff.models import AuditEntry
from yuyue.staff.rules import Actor, ActorKind, system_actor
from yuyue.web.context import AppContext


def staff_member(world: World, *roles: Role) -> Actor:
    return Actor(
        hospital_id=world.hospital.id,
        kind=ActorKind.STAFF,
        id=str(uuid.uuid4()),
        channel=system_actor(world.hospital.id).channel,
        roles=frozenset(roles),
        name="office",
    )


async def in_force(ctx: AppContext, world: World) -> service.TemplateInForce:
    async with ctx.db.read() as s:
        return await service.template_in_force(
            s,
            hospital_id=world.hospital.id,
            kind=K.REMINDER,
            locale="zh-CN",
            department_id=world.department.id,
        )


async def save(
    ctx: AppContext, world: World, actor: Actor, *, department: bool, subject: str
) -> None:
    async with ctx.db.session_scope() as s:
        await service.save_template(
            s,
            actor=actor,
            kind=K.REMINDER,
            locale="zh-CN",
            department_id=world.department.id if department else None,
            subject=subject,
            body="{patient}，{date}就诊。{what_to_bring}",
            now=NOW,
        )


async def audit(ctx: AppContext) -> list[AuditEntry]:
    async with ctx.db.read() as s:
        return list((await s.scalars(select(AuditEntry).order_by(AuditEntry.at))).all())


class TestWordingInForce:
    async def test_the_department_before_the_hospital_before_the_default(
        self, ctx: AppContext, world: World
    ) -> None:
        scheduler = staff_member(world, Role.SCHEDULER)
        assert await in_force(ctx, world) == service.TemplateInForce(
            *default_template(K.REMINDER, "zh-CN"), service.TemplateSource.DEFAULT
        )
        await save(ctx, world, scheduler, department=False, subject="全院提醒")
        assert (await in_force(ctx, world)).source is service.TemplateSource.HOSPITAL
        await save(ctx, world, scheduler, department=True, subject="内科提醒")
        found = await in_force(ctx, world)
        assert (found.subject, found.source) == ("内科提醒", service.TemplateSource.DEPARTMENT)

        async with ctx.db.session_scope() as s:
            removed = await service.remove_template(
                s,
                actor=scheduler,
                kind=K.REMINDER,
                locale="zh-CN",
                department_id=world.department.id,
                now=NOW,
            )
        assert removed
        found = await in_force(ctx, world)
        assert (found.subject, found.source) == ("全院提醒", service.TemplateSource.HOSPITAL)

        entries = await audit(ctx)
        assert [e.action for e in entries] == [
            "save_message_template",
            "save_message_template",
            "remove_message_template",
        ]
        first, department, gone = entries
        assert first.entity_type == "hospital" and first.before is None
        assert department.entity_type == "department"
        assert department.entity_id == world.department.id
        assert department.after is not None and department.after["subject"] == "内科提醒"
        assert gone.before == department.after and gone.after is None

    async def test_removing_nothing_changes_nothing(self, ctx: AppContext, world: World) -> None:
        before = await row_counts(ctx.db)
        async with ctx.db.session_scope() as s:
            removed = await service.remove_template(
                s,
                actor=staff_member(world, Role.SCHEDULER),
                kind=K.REMINDER,
                locale="zh-CN",
                department_id=world.department.id,
                now=NOW,
            )
        assert not removed
        assert await row_counts(ctx.db) == before


class TestRefusals:
    @pytest.mark.parametrize("roles", [(Role.NURSE,), (Role.REGISTRAR, Role.DOCTOR), ()])
    async def test_only_schedulers_and_admins_set_wording_and_settings(
        self, ctx: AppContext, world: World, roles: tuple[Role, ...]
    ) -> None:
        other = staff_member(world, *roles)
        before = await row_counts(ctx.db)
        with pytest.raises(Forbidden):
            await save(ctx, world, other, department=True, subject="x")
        with pytest.raises(Forbidden):
            async with ctx.db.session_scope() as s:
                await service.save_notification_settings(
                    s,
                    actor=other,
                    reminder_offsets_hours=[24],
                    quiet_hours_start=time(22),
                    quiet_hours_end=time(7),
                    now=NOW,
                )
        assert await row_counts(ctx.db) == before
        # An administrator holds every role.
        await save(ctx, world, staff_member(world, Role.ADMIN), department=True, subject="y")

    async def test_a_department_wording_of_a_hospital_message_is_refused(
        self, ctx: AppContext, world: World
    ) -> None:
        before = await row_counts(ctx.db)
        with pytest.raises(rules.InvalidTemplate):
            async with ctx.db.session_scope() as s:
                await service.save_template(
                    s,
                    actor=staff_member(world, Role.SCHEDULER),
                    kind=K.SIGN_IN_CODE,
                    locale="zh-CN",
                    department_id=world.department.id,
                    subject="验证码",
                    body="{code}",
                    now=NOW,
                )
        assert await row_counts(ctx.db) == before

    async def test_another_hospitals_department_is_not_found(
        self, ctx: AppContext, world: World
    ) -> None:
        before = await row_counts(ctx.db)
        scheduler = staff_member(world, Role.SCHEDULER)
        with pytest.raises(NotFound):
            async with ctx.db.session_scope() as s:
                await service.save_template(
                    s,
                    actor=scheduler,
                    kind=K.REMINDER,
                    locale="zh-CN",
                    department_id=uuid.uuid4(),
                    subject="x",
                    body="y",
                    now=NOW,
                )
        with pytest.raises(NotFound):
            async with ctx.db.session_scope() as s:
                await service.remove_template(
                    s,
                    actor=scheduler,
                    kind=K.REMINDER,
                    locale="zh-CN",
                    department_id=uuid.uuid4(),
                    now=NOW,
                )
        assert await row_counts(ctx.db) == before


class TestSettingsAudit:
    async def test_a_change_of_reminders_and_quiet_hours_is_audited(
        self, ctx: AppContext, world: World
    ) -> None:
        async with ctx.db.session_scope() as s:
            saved = await service.save_notification_settings(
                s,
                actor=staff_member(world, Role.SCHEDULER),
                reminder_offsets_hours=[24, 48],
                quiet_hours_start=time(21, 30),
                quiet_hours_end=time(8),
                now=NOW,
            )
        assert saved.reminder_offsets_hours == (48, 24) and saved.saved
        [entry] = await audit(ctx)
        assert entry.action == "update_notification_settings"
        assert entry.before == {
            "reminder_offsets_hours": [168, 72, 24],
            "quiet_hours_start": "22:00",
            "quiet_hours_end": "07:00",
            "custom": False,
        }
        assert entry.after is not None and entry.after["reminder_offsets_hours"] == [48, 24]
