"""Staff roles. No SQLAlchemy here, so the pure rules and every context can use them."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    SCHEDULER = "scheduler"
    REGISTRAR = "registrar"
    NURSE = "nurse"
    DOCTOR = "doctor"
    FINANCE = "finance"
    # The outpatient office's duty supervisor (门诊值班主管): approves staff changes to
    # confirmed bookings (cancel after the deadline, move, change the patient).
    SUPERVISOR = "supervisor"
