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
    # An auditor (审计员): reads the audit trail (the viewer and its CSV export), and changes
    # nothing: every route that changes data refuses the role (`web.access`).
    AUDITOR = "auditor"
