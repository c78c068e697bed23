"""Imports every table so Alembic and the tests see the whole schema."""

from yuyue.accounts.models import SignInCode, WebSession
from yuyue.attendance.models import BlacklistAppeal, NoShowBan, NoShowPolicy
from yuyue.booking.models import Appointment, BlacklistEntry, ChangeRequest, IdempotencyRecord
from yuyue.booking.waitlist.models import WaitlistEntry
from yuyue.kit.db import Base
from yuyue.notifications.models import (
    Delivery,
    DeliveryAttempt,
    DemoPhoneMessage,
    InboxItem,
    MessageTemplate,
    NotificationSettings,
    OutboxMessage,
)
from yuyue.operations.models import Announcement, AnnouncementRecipient, Maintenance
from yuyue.patients.models import Account, Patient
from yuyue.payments.models import (
    PaymentAttempt,
    PaymentOrder,
    ReconciliationItem,
    ReconciliationRun,
    Refund,
)
from yuyue.reports.models import (
    ReportDay,
    ReportDemand,
    ReportMoney,
    ReportPlaces,
    ReportRefresh,
    ReportWaits,
)
from yuyue.scheduling.models import (
    BookingPolicy,
    Campus,
    ClinicSession,
    Department,
    Doctor,
    Hospital,
    PoolRatio,
    RegistrationLevel,
    ScheduleTemplate,
    SlotPool,
    TimeSlot,
)
from yuyue.staff.models import ApiKey, AuditEntry, StaffUser
from yuyue.visits.models import CheckInFailure, Visit, VisitPolicy

__all__ = [
    "Account",
    "Announcement",
    "AnnouncementRecipient",
    "ApiKey",
    "Appointment",
    "AuditEntry",
    "Base",
    "BlacklistAppeal",
    "BlacklistEntry",
    "BookingPolicy",
    "Campus",
    "ChangeRequest",
    "CheckInFailure",
    "ClinicSession",
    "Delivery",
    "DeliveryAttempt",
    "DemoPhoneMessage",
    "Department",
    "Doctor",
    "Hospital",
    "IdempotencyRecord",
    "InboxItem",
    "Maintenance",
    "MessageTemplate",
    "NoShowBan",
    "NoShowPolicy",
    "NotificationSettings",
    "OutboxMessage",
    "Patient",
    "PaymentAttempt",
    "PaymentOrder",
    "PoolRatio",
    "ReconciliationItem",
    "ReconciliationRun",
    "Refund",
    "RegistrationLevel",
    "ReportDay",
    "ReportDemand",
    "ReportMoney",
    "ReportPlaces",
    "ReportRefresh",
    "ReportWaits",
    "ScheduleTemplate",
    "SignInCode",
    "SlotPool",
    "StaffUser",
    "TimeSlot",
    "Visit",
    "VisitPolicy",
    "WaitlistEntry",
    "WebSession",
]
