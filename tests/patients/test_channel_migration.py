"""The migration that brings `patient_channel`: partners keep reading the patients they
booked for before the rule (each remote channel that booked a patient knows them), kiosk and
window bookings give no channel anything, and the window's earlier read entries join the
`read.` family the audit viewer filters by. On SQLite, from the revision before it."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from alembic import command
from sqlalchemy import text

from tests import factories as f
from tests.conftest import NOW, VISIT_DAY
from tests.patients.old_rows import insert_patient
from yuyue.booking import service as booking_service
from yuyue.kit import migrate
from yuyue.kit.crypto import FieldCipher, generate_master_secret, load_master_secret
from yuyue.kit.db import Database
from yuyue.scheduling.enums import Channel
from yuyue.staff.rules import Actor, ActorKind, system_actor
from yuyue.staff.service import record_audit

BEFORE = "d2b6f1a9c3e8"


async def test_bookings_before_the_rule_carry_over_and_old_read_entries_are_renamed(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    await asyncio.to_thread(command.upgrade, migrate.alembic_config(url), BEFORE)
    cipher = FieldCipher(load_master_secret(generate_master_secret()))
    db = Database(url)
    try:
        # At the old revision: the ORM writes only tables that exist there.
        async with db.session_scope() as s:
            hospital = await f.make_hospital(s, now=NOW)
            department = await f.make_department(s, hospital=hospital)
            level = await f.make_level(s, hospital=hospital, fee_fen=0)
            clinic = await f.make_session(
                s, hospital=hospital, department=department, level=level, day=VISIT_DAY, now=NOW
            )
            by_app = await insert_patient(s, hospital=hospital, cipher=cipher, created_at=NOW)
            at_kiosk = await insert_patient(
                s, hospital=hospital, cipher=cipher, created_at=NOW, name="李四"
            )
        for patient_id, channel in ((by_app, Channel.APP), (at_kiosk, Channel.KIOSK)):
            actor = Actor(hospital_id=hospital.id, kind=ActorKind.CHANNEL, id="k", channel=channel)
            async with db.session_scope() as s:
                await booking_service.book(
                    s,
                    actor=actor,
                    patient_id=patient_id,
                    session_id=clinic.id,
                    slot_id=None,
                    now=NOW,
                )
        async with db.session_scope() as s:
            for action in ("patient.viewed", "patient.looked_up", "staff.created"):
                record_audit(
                    s,
                    actor=system_actor(hospital.id),
                    action=action,
                    entity_type="patient",
                    entity_id=by_app,
                    before=None,
                    after=None,
                    now=NOW,
                )
    finally:
        await db.dispose()

    await migrate.upgrade(url)

    db = Database(url)
    try:
        async with db.read() as s:
            known = (await s.execute(text("SELECT patient_id, channel FROM patient_channel"))).all()
            actions = (await s.scalars(text("SELECT action FROM audit_entry"))).all()
    finally:
        await db.dispose()
    assert [(uuid.UUID(str(p)), c) for p, c in known] == [(by_app, "app")]
    assert sorted(a for a in actions if not a.startswith("book")) == [
        "read.lookup",
        "read.record",
        "staff.created",
    ]
