"""A PostgreSQL backup that restores: a base backup taken while yuyue's bookings go on,
the WAL archived after it, both restored into a fresh server that replays the WAL, and
every booking found there, exactly once. The plan in docs/operations.md, as a test."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from sqlalchemy import select

from tests import factories as f
from tests.conftest import NOW, SECRET, VISIT_DAY
from tests.ops import pgcluster as pg
from yuyue.booking import service as booking_service
from yuyue.booking.models import Appointment
from yuyue.kit import migrate
from yuyue.kit.crypto import FieldCipher, load_master_secret
from yuyue.kit.db import Database
from yuyue.scheduling.enums import Channel
from yuyue.scheduling.models import Hospital
from yuyue.staff.rules import Actor, ActorKind


async def _hospital(database: Database) -> tuple[uuid.UUID, uuid.UUID]:
    async with database.session_scope() as s:
        hospital = await f.make_hospital(s, now=NOW)
        department = await f.make_department(s, hospital=hospital)
        level = await f.make_level(s, hospital=hospital, fee_fen=0)
        doctor = await f.make_doctor(s, hospital=hospital, department=department, level=level)
        clinic = await f.make_session(
            s,
            hospital=hospital,
            department=department,
            level=level,
            doctor=doctor,
            day=VISIT_DAY,
            capacity=50,
            now=NOW,
        )
        return hospital.id, clinic.id


async def _book(
    database: Database, hospital_id: uuid.UUID, session_id: uuid.UUID, n: int
) -> list[str]:
    cipher = FieldCipher(load_master_secret(SECRET))
    actor = Actor(hospital_id, ActorKind.CHANNEL, "app", Channel.APP)
    booked: list[str] = []
    for _ in range(n):
        async with database.session_scope() as s:
            hospital = await s.get(Hospital, hospital_id)
            assert hospital is not None
            patient = await f.make_patient(s, hospital=hospital, cipher=cipher, now=NOW)
            result = await booking_service.book(
                s, actor=actor, patient_id=patient.id, session_id=session_id, slot_id=None, now=NOW
            )
            booked.append(str(result.appointment.id))
    return booked


async def _close(database: Database) -> None:
    await database.dispose()
    await database.write_engine.dispose()
    await database.read_engine.dispose()


async def _appointments(url: str) -> list[str]:
    database = Database(url)
    try:
        async with database.read() as s:
            return sorted(str(i) for i in (await s.scalars(select(Appointment.id))).all())
    finally:
        await _close(database)


async def test_a_base_backup_and_the_archived_wal_restore_every_booking(cluster_root: Path) -> None:
    archive = cluster_root / "wal-archive"
    primary = pg.new_primary(cluster_root, archive=archive)
    primary.start()
    with pg.running(primary):
        await migrate.upgrade(primary.url)
        database = Database(primary.url)
        try:
            hospital_id, session_id = await _hospital(database)
            before = await _book(database, hospital_id, session_id, 5)
            base = cluster_root / "base"
            pg.run(
                pg.BIN / "pg_basebackup",
                "-h",
                "127.0.0.1",
                "-p",
                str(primary.port),
                "-U",
                "postgres",
                "-D",
                base,
                "-X",
                "stream",
                "--checkpoint=fast",
            )
            # Bookings after the base backup exist only in the archived WAL.
            after = await _book(database, hospital_id, session_id, 7)
        finally:
            await _close(database)
        primary.sql("SELECT pg_switch_wal()")
        switched = primary.sql("SELECT pg_walfile_name(pg_current_wal_lsn() - 1)")
        for _ in range(200):  # the archiver copies the finished segment
            if (archive / switched).exists():
                break
            await asyncio.sleep(0.1)
        assert (archive / switched).exists(), "the last WAL segment was not archived"
    primary.stop("immediate")

    # The restore: the base backup, the archive's WAL replayed, then a server of its own.
    restored = pg.Server(cluster_root / "base", pg.free_port())
    restored.configure(
        port=str(restored.port),
        archive_mode="off",
        restore_command=f"cp {archive}/%f %p",
    )
    (restored.data / "recovery.signal").touch()
    restored.start()
    with pg.running(restored):
        restored.wait_ready()
        found = await _appointments(restored.url)
    assert found == sorted(before + after)
