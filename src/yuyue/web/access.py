"""Who may call what: one declared table of every route of the app, the JSON API and the
pages alike, and the callers each one admits. Pure data.

A caller is nobody (no credentials), a channel client's API key, a kiosk device's key (as a
bearer on the API, or the cookie a set-up kiosk keeps), a patient signed in on the patient
pages, or a member of staff with one or more roles. An administrator holds every role
(`staff.rules.Actor.has_role`), so a row that admits any role admits administrators too.

The checks themselves stay where they are (a route's first lines, its service); this table
says what they must add up to, and `tests/web/test_route_access.py` calls every route as
every caller and fails when a route has no row here, a row has no route, or a route answers
otherwise. HEAD is answered as GET by `web.security`, so a GET row covers HEAD. docs/api.md
shows the table; `python -m yuyue.web.access --write docs/api.md` renders it again.

Adding a route: add one `route("METHOD /path/{param}", *who, note=...)` line below, with the
path exactly as the route declares it.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from yuyue.staff.enums import Role


class Caller(StrEnum):
    """Who calls, apart from staff roles."""

    # No credentials at all: the route is public, and so open to every caller below too.
    ANYONE = "anyone"
    # A channel client's API key (app, mini programs, web, phone, community) as a bearer.
    CHANNEL_KEY = "channel_key"
    # A kiosk-channel key: a bearer on the API, the set-up device's cookie on the kiosk pages.
    KIOSK_KEY = "kiosk_key"
    # A patient signed in on the patient pages (their session cookie).
    PATIENT = "patient"


@dataclass(frozen=True, slots=True)
class RouteAccess:
    """One route and the callers it admits."""

    method: str
    path: str
    callers: frozenset[Caller]
    roles: frozenset[Role]
    note: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.path

    @property
    def public(self) -> bool:
        return Caller.ANYONE in self.callers

    def admits(self, *, caller: Caller | None = None, roles: Iterable[Role] = ()) -> bool:
        """Whether a caller of this kind (or a member of staff holding `roles`) may call it."""
        if self.public:
            return True
        if caller is not None and caller in self.callers:
            return True
        held = frozenset(roles)
        return bool(self.roles) and (Role.ADMIN in held or bool(self.roles & held))


Who = Caller | Role


def route(spec: str, *who: Who, note: str = "") -> RouteAccess:
    """A row: "METHOD /path" and who may call it. Any staff role brings administrators."""
    method, _, path = spec.partition(" ")
    roles = frozenset(item for item in who if isinstance(item, Role))
    if roles:
        roles |= {Role.ADMIN}
    callers = frozenset(item for item in who if isinstance(item, Caller))
    return RouteAccess(method, path, callers, roles, note)


ANYONE = (Caller.ANYONE,)
# Any channel client, kiosks included.
KEYS = (Caller.CHANNEL_KEY, Caller.KIOSK_KEY)
# Any member of staff: only their own account's pages and calls (sign-ins, password, second
# factor) and the console's menu admit every role.
STAFF: tuple[Role, ...] = tuple(Role)
# Staff at work: every role but the read-only ones (the auditor reads the audit trail and
# changes nothing, `staff.rules.READ_ONLY_ROLES`).
WORKING: tuple[Role, ...] = tuple(role for role in Role if role is not Role.AUDITOR)
ADMIN = Role.ADMIN
SCHEDULER = Role.SCHEDULER
REGISTRAR = Role.REGISTRAR
NURSE = Role.NURSE
DOCTOR = Role.DOCTOR
FINANCE = Role.FINANCE
SUPERVISOR = Role.SUPERVISOR
AUDITOR = Role.AUDITOR
KIOSK = Caller.KIOSK_KEY
PATIENT = Caller.PATIENT

OWN_SESSIONS = "a doctor: own sessions, or the department's without a named doctor"
OWN_RECORDS = "the signed-in account's own records only"
OWN_FAMILY = "the account's own family patients only"
PROVIDER = "the provider's signature is verified; unsigned calls change nothing"
PATIENT_READS = (
    "masked; staff: any patient (each read logged); a channel key: the patients its channel "
    "registered; a kiosk key: none (404)"
)

ACCESS: tuple[RouteAccess, ...] = (
    # --- operations and the API's own documents ---
    route("GET /openapi.json", *ANYONE),
    route("GET /docs", *ANYONE),
    route("GET /docs/oauth2-redirect", *ANYONE),
    route("GET /redoc", *ANYONE),
    route("GET /healthz", *ANYONE),
    route("GET /readyz", *ANYONE),
    route("GET /metrics", *ANYONE, note="keep it on the internal network (docs/operations.md)"),
    # --- scheduling ---
    route("GET /api/v1/departments", *KEYS, *WORKING),
    route("GET /api/v1/doctors", *KEYS, *WORKING),
    route("POST /api/v1/departments", SCHEDULER),
    route("PATCH /api/v1/departments/{department_id}", SCHEDULER),
    route(
        "POST /api/v1/departments/{department_id}/deactivate",
        SCHEDULER,
        note="hidden from patients; sessions already made stay",
    ),
    route("POST /api/v1/departments/{department_id}/reactivate", SCHEDULER),
    route("POST /api/v1/doctors", SCHEDULER),
    route("PATCH /api/v1/doctors/{doctor_id}", SCHEDULER),
    route(
        "POST /api/v1/doctors/{doctor_id}/deactivate",
        SCHEDULER,
        note="no new sessions; bookings untouched",
    ),
    route("POST /api/v1/doctors/{doctor_id}/reactivate", SCHEDULER),
    route("POST /api/v1/schedule-templates", SCHEDULER),
    route("POST /api/v1/sessions/generate", SCHEDULER),
    route("POST /api/v1/sessions", SCHEDULER, note="extra session (加诊)"),
    route("PUT /api/v1/pool-ratios", SCHEDULER),
    route("GET /api/v1/booking-policy", *KEYS, *WORKING, note="published rules"),
    route("PUT /api/v1/booking-policy", SCHEDULER),
    route("GET /api/v1/sessions", *KEYS, *WORKING, note="places left for the caller's channel"),
    route("GET /api/v1/sessions/{session_id}/slots", *KEYS, *WORKING),
    route("POST /api/v1/sessions/{session_id}/extra-places", SCHEDULER, note="加号"),
    route("POST /api/v1/sessions/{session_id}/stop", SCHEDULER, note="停诊 / 替诊"),
    route("POST /api/v1/sessions/{session_id}/stop/preview", SCHEDULER),
    route("GET /api/v1/sessions/{session_id}/substitutes", SCHEDULER),
    # --- patients and appointments ---
    route("POST /api/v1/patients", *KEYS, *WORKING),
    route(
        "GET /api/v1/patients/{patient_id}",
        *KEYS,
        *WORKING,
        note=PATIENT_READS,
    ),
    route(
        "POST /api/v1/patients/{patient_id}/unmask",
        REGISTRAR,
        note="the full identity number or phone, once, with a reason; logged",
    ),
    route("POST /api/v1/appointments", *KEYS, *WORKING, note="staff book from the window's pools"),
    route("GET /api/v1/appointments/{appointment_id}", *KEYS, *WORKING),
    route("POST /api/v1/appointments/{appointment_id}/cancel", *KEYS, *WORKING),
    route("POST /api/v1/appointments/{appointment_id}/reschedule", *KEYS, *WORKING),
    route("POST /api/v1/appointments/{appointment_id}/confirm-payment", FINANCE, REGISTRAR),
    route("GET /api/v1/patients/{patient_id}/appointments", *KEYS, *WORKING, note=PATIENT_READS),
    route("POST /api/v1/blacklist", ADMIN),
    # --- staff sign-in, accounts and keys ---
    route("POST /api/v1/auth/token", *ANYONE, note="throttled per account and client address"),
    route("POST /api/v1/auth/token/totp", *ANYONE, note="with the challenge of the first step"),
    route("POST /api/v1/auth/sign-out", *STAFF, note="ends the caller's own session"),
    route("GET /api/v1/auth/sessions", *STAFF, note="the caller's own sessions"),
    route("DELETE /api/v1/auth/sessions/{session_id}", *STAFF, note="the caller's own sessions"),
    route(
        "POST /api/v1/auth/password",
        *STAFF,
        note="also before the temporary password has been changed",
    ),
    route("POST /api/v1/auth/totp/enrol", *STAFF, note="also before the second factor is set up"),
    route("POST /api/v1/auth/totp/confirm", *STAFF, note="also before the second factor is set up"),
    route("GET /api/v1/staff/users", ADMIN),
    route("POST /api/v1/staff/users", ADMIN),
    route("PATCH /api/v1/staff/users/{user_id}", ADMIN),
    route("POST /api/v1/staff/users/{user_id}/disable", ADMIN),
    route("POST /api/v1/staff/users/{user_id}/enable", ADMIN),
    route("POST /api/v1/staff/users/{user_id}/password-reset", ADMIN),
    route("POST /api/v1/staff/users/{user_id}/second-factor-reset", ADMIN),
    route("GET /api/v1/staff/users/{user_id}/sessions", ADMIN),
    route("DELETE /api/v1/staff/users/{user_id}/sessions", ADMIN),
    route("GET /api/v1/staff/second-factor-roles", ADMIN),
    route("PUT /api/v1/staff/second-factor-roles", ADMIN),
    route("POST /api/v1/api-keys", ADMIN),
    route("DELETE /api/v1/api-keys/{key_id}", ADMIN),
    # --- the waitlist ---
    route("POST /api/v1/sessions/{session_id}/waitlist", *KEYS, *WORKING),
    route("GET /api/v1/waitlist", *KEYS, *WORKING, note=PATIENT_READS),
    route("DELETE /api/v1/waitlist/{entry_id}", *KEYS, *WORKING),
    route("POST /api/v1/waitlist/{entry_id}/accept", *KEYS, *WORKING),
    route("POST /api/v1/waitlist/{entry_id}/decline", *KEYS, *WORKING),
    # --- messages ---
    route("GET /api/v1/message-templates", SCHEDULER),
    route("PUT /api/v1/message-templates", SCHEDULER),
    route("GET /api/v1/notification-settings", SCHEDULER),
    route("PUT /api/v1/notification-settings", SCHEDULER),
    # --- no-shows ---
    route("GET /api/v1/no-show-policy", *KEYS, *WORKING, note="published rules"),
    route("PUT /api/v1/no-show-policy", SCHEDULER),
    route("GET /api/v1/appeals", REGISTRAR),
    route("POST /api/v1/appeals/{appeal_id}/decide", REGISTRAR),
    # --- the visit day ---
    route("POST /api/v1/check-ins", KIOSK, NURSE, REGISTRAR),
    route("POST /api/v1/desk/check-ins", NURSE, REGISTRAR),
    route(
        "POST /api/v1/desk/lookup",
        NURSE,
        REGISTRAR,
        note="the query in the body: ID and phone numbers never in an address; logged",
    ),
    route(
        "GET /api/v1/desk/lookup",
        NURSE,
        REGISTRAR,
        note="8-digit short code only (`lookup_in_url` otherwise); deprecated",
    ),
    route("POST /api/v1/walk-ins", NURSE, REGISTRAR),
    route(
        "GET /api/v1/sessions/{session_id}/queue",
        KIOSK,
        NURSE,
        DOCTOR,
        REGISTRAR,
        note="names masked for kiosks",
    ),
    route(
        "GET /api/v1/departments/{department_id}/board",
        KIOSK,
        NURSE,
        DOCTOR,
        REGISTRAR,
        note="names masked",
    ),
    route("GET /api/v1/visits/{visit_id}", KIOSK, NURSE, DOCTOR, REGISTRAR),
    route("POST /api/v1/sessions/{session_id}/call-next", NURSE, DOCTOR, note=OWN_SESSIONS),
    route("POST /api/v1/visits/{visit_id}/call", NURSE, DOCTOR, note=OWN_SESSIONS),
    route("POST /api/v1/visits/{visit_id}/recall", NURSE, DOCTOR, note=OWN_SESSIONS),
    route("POST /api/v1/visits/{visit_id}/skip", NURSE, DOCTOR, note=OWN_SESSIONS),
    route("POST /api/v1/visits/{visit_id}/start", NURSE, DOCTOR, note=OWN_SESSIONS),
    route("POST /api/v1/visits/{visit_id}/finish", NURSE, DOCTOR, note=OWN_SESSIONS),
    route("POST /api/v1/visits/{visit_id}/return-visit", NURSE, DOCTOR, note=OWN_SESSIONS),
    route("POST /api/v1/visits/{visit_id}/priority", NURSE),
    route("POST /api/v1/visits/{visit_id}/move", NURSE),
    route("GET /api/v1/visit-policy", *KEYS, *WORKING, note="published rules"),
    route("PUT /api/v1/visit-policy", SCHEDULER),
    # --- payments ---
    route("POST /api/v1/appointments/{appointment_id}/payments", *KEYS, *WORKING),
    route("POST /api/v1/payments/wechatpay/notify", *ANYONE, note=PROVIDER),
    route("POST /api/v1/payments/alipay/notify", *ANYONE, note=PROVIDER),
    route("POST /api/v1/payments/insurance/notify", *ANYONE, note=PROVIDER),
    route("POST /api/v1/appointments/{appointment_id}/window-payments", REGISTRAR),
    route("POST /api/v1/payment-orders/{order_id}/invoice", REGISTRAR, FINANCE),
    route("POST /api/v1/refunds/{refund_id}/window", REGISTRAR),
    route("GET /api/v1/payment-orders", FINANCE),
    route("GET /api/v1/appointments/{appointment_id}/receipt", *KEYS, *WORKING),
    route(
        "GET /api/v1/payment-settings", *KEYS, *WORKING, note="which payments the hospital takes"
    ),
    route("PUT /api/v1/payment-settings", ADMIN),
    route("GET /api/v1/reconciliation", FINANCE),
    route("GET /api/v1/reconciliation/{run_id}/items", FINANCE),
    route("POST /api/v1/reconciliation/items/{item_id}/handled", FINANCE),
    # --- guidance, operations, announcements, reports ---
    route(
        "POST /api/v1/guidance",
        *ANYONE,
        note="throttled per client address; naming a patient needs a key",
    ),
    route("GET /api/v1/maintenance", *KEYS, *WORKING),
    route("PUT /api/v1/maintenance", ADMIN),
    route("DELETE /api/v1/maintenance", ADMIN),
    route("POST /api/v1/announcements", SCHEDULER),
    route("GET /api/v1/announcements", *ANYONE, note="`all=true` (withdrawn ones too): scheduler"),
    route("DELETE /api/v1/announcements/{announcement_id}", SCHEDULER),
    route("GET /api/v1/reports/quota-advice", FINANCE, SCHEDULER),
    route(
        "POST /api/v1/reports/quota-advice/accept",
        SCHEDULER,
        note="writes the pool shares through scheduling",
    ),
    route("GET /api/v1/reports/{name}", FINANCE, SCHEDULER),
    # --- approvals (审批) ---
    route("POST /api/v1/appointments/{appointment_id}/change-requests", REGISTRAR, NURSE),
    route("GET /api/v1/change-requests", REGISTRAR, NURSE, SUPERVISOR),
    route(
        "POST /api/v1/change-requests/{request_id}/approve",
        SUPERVISOR,
        note="never the one who asked",
    ),
    route("POST /api/v1/change-requests/{request_id}/reject", SUPERVISOR),
    route(
        "POST /api/v1/change-requests/{request_id}/withdraw",
        REGISTRAR,
        NURSE,
        note="whoever asked",
    ),
    # --- the patient pages ---
    route("GET /", *ANYONE),
    route("GET /announcements", *ANYONE),
    route("POST /preferences", *ANYONE, note="language and text size"),
    route("GET /signin", *ANYONE),
    route("POST /signin/code", *ANYONE, note="throttled per phone"),
    route("POST /signin", *ANYONE),
    route("POST /signout", *ANYONE),
    route("GET /departments", *ANYONE),
    route("GET /departments/{department_id}", *ANYONE),
    route("GET /doctors/{doctor_id}", *ANYONE),
    route("GET /sessions/{session_id}", *ANYONE),
    route("GET /sessions/{session_id}/confirm", PATIENT),
    route("POST /sessions/{session_id}/book", PATIENT, note=OWN_FAMILY),
    route("GET /appointments", PATIENT, note=OWN_RECORDS),
    route("GET /appointments/{appointment_id}", PATIENT, note=OWN_RECORDS),
    route("GET /appointments/{appointment_id}/cancel", PATIENT, note=OWN_RECORDS),
    route("POST /appointments/{appointment_id}/cancel", PATIENT, note=OWN_RECORDS),
    route("GET /appointments/{appointment_id}/reschedule", PATIENT, note=OWN_RECORDS),
    route("GET /appointments/{appointment_id}/reschedule/{session_id}", PATIENT, note=OWN_RECORDS),
    route("POST /appointments/{appointment_id}/reschedule", PATIENT, note=OWN_RECORDS),
    route("GET /patients", PATIENT, note=OWN_FAMILY),
    route("GET /patients/new", PATIENT),
    route("POST /patients", PATIENT, note="adds to the account's family"),
    route("GET /rules", *ANYONE),
    route("GET /appointments/{appointment_id}/pay", PATIENT, note=OWN_RECORDS),
    route("POST /appointments/{appointment_id}/pay", PATIENT, note=OWN_RECORDS),
    route("GET /appointments/{appointment_id}/paid", PATIENT, note=OWN_RECORDS),
    route("GET /appointments/{appointment_id}/payment-state", PATIENT, note=OWN_RECORDS),
    route("GET /inbox", PATIENT, note=OWN_RECORDS),
    route("GET /demo/phone", *ANYONE, note="demo mode only; 404 otherwise"),
    route("GET /settings", PATIENT),
    route("POST /settings", PATIENT),
    route("GET /waitlist", PATIENT, note=OWN_FAMILY),
    route("POST /sessions/{session_id}/waitlist", PATIENT, note=OWN_FAMILY),
    route("POST /waitlist/{entry_id}/{action}", PATIENT, note=OWN_FAMILY),
    route("GET /patients/{patient_id}/ban", PATIENT, note=OWN_FAMILY),
    route("POST /patients/{patient_id}/ban/{entry_id}/appeal", PATIENT, note=OWN_FAMILY),
    route("GET /appointments/{appointment_id}/live", PATIENT, note=OWN_RECORDS),
    route("GET /guidance", *ANYONE),
    route("POST /guidance", *ANYONE, note="throttled per client address"),
    # --- staff sign-in and kiosk set-up ---
    route("GET /staff/signin", *ANYONE),
    route("POST /staff/signin", *ANYONE, note="throttled per account and client address"),
    route("POST /staff/signin/code", *ANYONE, note="the second step, with its challenge"),
    route("POST /staff/signout", *ANYONE),
    route("GET /staff/password", *STAFF, note="also before the temporary password is changed"),
    route("POST /staff/password", *STAFF, note="also before the temporary password is changed"),
    route("GET /staff/second-factor", *STAFF, note="also before the second factor is set up"),
    route("POST /staff/second-factor", *STAFF, note="also before the second factor is set up"),
    route("GET /kiosk/setup", *ANYONE, note="the kiosk key typed in is the credential"),
    route("POST /kiosk/setup", *ANYONE, note="the kiosk key typed in is the credential"),
    # --- the hospital floor ---
    route("GET /kiosk", KIOSK),
    route("GET /kiosk/notices/live", KIOSK),
    route("POST /kiosk/scan", KIOSK),
    route("POST /kiosk/code", KIOSK, note="wrong codes limited per code and slowed per kiosk"),
    route("GET /kiosk/pay", KIOSK),
    route("GET /kiosk/tickets/{visit_id}", KIOSK),
    route("GET /desk", NURSE, REGISTRAR),
    route(
        "POST /desk/find", NURSE, REGISTRAR, note="the search in the form's body, never the address"
    ),
    route("POST /desk/check-in", NURSE, REGISTRAR),
    route("POST /desk/walk-in", NURSE, REGISTRAR),
    route("GET /desk/queues/{session_id}", NURSE, REGISTRAR),
    route("POST /desk/queues/{session_id}/priority", NURSE),
    route("POST /desk/queues/{session_id}/move", NURSE),
    route("GET /doctor", DOCTOR),
    route("POST /doctor/sessions/{session_id}/{action}", DOCTOR, note=OWN_SESSIONS),
    route("GET /doctor/sessions/{session_id}/live", DOCTOR, note=OWN_SESSIONS),
    route("GET /screens/{department_id}", KIOSK, NURSE, DOCTOR, REGISTRAR, note="names masked"),
    route(
        "GET /screens/{department_id}/live", KIOSK, NURSE, DOCTOR, REGISTRAR, note="names masked"
    ),
    route("GET /desk/appeals", REGISTRAR),
    route("POST /desk/appeals/{appeal_id}/decide", REGISTRAR),
    route("GET /desk/announcements", SCHEDULER),
    route("POST /desk/announcements", SCHEDULER),
    route("POST /desk/announcements/{announcement_id}/withdraw", SCHEDULER),
    route("GET /desk/stop-clinic", SCHEDULER),
    route("GET /desk/stop-clinic/{session_id}", SCHEDULER),
    route("POST /desk/stop-clinic/{session_id}/preview", SCHEDULER),
    route("POST /desk/stop-clinic/{session_id}", SCHEDULER),
    route("GET /finance/orders", FINANCE),
    route("GET /finance", FINANCE),
    route("GET /finance/orders/{order_id}", FINANCE),
    route("GET /finance/reconciliation", FINANCE),
    route("GET /finance/reconciliation/{run_id}", FINANCE),
    route("POST /finance/reconciliation/items/{item_id}/handled", FINANCE),
    # --- the console ---
    route("GET /staff", *STAFF, note="the menu of what the caller's roles may open"),
    route("GET /staff/accounts", ADMIN),
    route("POST /staff/accounts", ADMIN),
    route("GET /staff/accounts/{user_id}", ADMIN),
    route("POST /staff/accounts/{user_id}", ADMIN),
    route("POST /staff/accounts/{user_id}/{action}", ADMIN),
    route("GET /staff/audit", AUDITOR, note="the viewer and its CSV export (format=csv)"),
    route("POST /staff/second-factor-roles", ADMIN, note="the roles that must use a second factor"),
    route("GET /staff/sessions", *STAFF, note="the caller's own sign-ins"),
    route("POST /staff/sessions/{session_id}/end", *STAFF, note="the caller's own sign-ins"),
    route("GET /reports", FINANCE, SCHEDULER),
    route("GET /reports/quota-advice", FINANCE, SCHEDULER),
    route("POST /reports/quota-advice/accept", SCHEDULER),
    route("GET /reports/{name}", FINANCE, SCHEDULER),
    # --- approvals, the registration window, the scheduler's pages ---
    route("GET /desk/approvals", REGISTRAR, NURSE, SUPERVISOR),
    route("POST /desk/approvals/{request_id}/approve", SUPERVISOR),
    route("POST /desk/approvals/{request_id}/reject", SUPERVISOR),
    route("POST /desk/approvals/{request_id}/withdraw", REGISTRAR, NURSE),
    route("GET /desk/window", REGISTRAR),
    route("POST /desk/window/find", REGISTRAR),
    route("POST /desk/window/patients", REGISTRAR),
    route(
        "POST /desk/window/patients/{patient_id}/unmask",
        REGISTRAR,
        note="the full number on the answer only, with a reason; logged",
    ),
    route("POST /desk/window/book", REGISTRAR),
    route("GET /desk/window/appointments/{appointment_id}", REGISTRAR),
    route("POST /desk/window/appointments/{appointment_id}/pay", REGISTRAR),
    route(
        "POST /desk/window/appointments/{appointment_id}/cancel",
        REGISTRAR,
        note="after the deadline it files a request for a supervisor",
    ),
    route("POST /desk/window/appointments/{appointment_id}/refund", REGISTRAR),
    route(
        "POST /desk/window/appointments/{appointment_id}/change-request",
        REGISTRAR,
        note="move or change of patient, for a supervisor to approve",
    ),
    route("GET /scheduling/week", SCHEDULER),
    route("GET /scheduling/sessions/{session_id}", SCHEDULER),
    route("GET /scheduling/templates", SCHEDULER),
    route("GET /scheduling/settings", SCHEDULER),
    route("GET /scheduling/doctors", SCHEDULER),
    route("POST /scheduling/sessions", SCHEDULER, note="extra session (加诊)"),
    route("POST /scheduling/sessions/{session_id}/extra-places", SCHEDULER, note="加号"),
    route("POST /scheduling/templates", SCHEDULER),
    route("POST /scheduling/templates/{template_id}", SCHEDULER),
    route("POST /scheduling/templates/{template_id}/remove", SCHEDULER),
    route("POST /scheduling/generate", SCHEDULER),
    route("POST /scheduling/settings/ratios", SCHEDULER),
    route("POST /scheduling/settings/policy", SCHEDULER),
    route("POST /scheduling/doctors/{doctor_id}", SCHEDULER),
    route("GET /scheduling/departments", SCHEDULER),
    route("POST /scheduling/departments", SCHEDULER),
    route("GET /scheduling/departments/{department_id}", SCHEDULER),
    route("POST /scheduling/departments/{department_id}", SCHEDULER),
    route("POST /scheduling/departments/{department_id}/deactivate", SCHEDULER),
    route("POST /scheduling/departments/{department_id}/reactivate", SCHEDULER),
    route("POST /scheduling/doctors", SCHEDULER),
    route("GET /scheduling/doctors/{doctor_id}", SCHEDULER),
    route("POST /scheduling/doctors/{doctor_id}/edit", SCHEDULER),
    route("POST /scheduling/doctors/{doctor_id}/deactivate", SCHEDULER),
    route("POST /scheduling/doctors/{doctor_id}/reactivate", SCHEDULER),
    route("GET /scheduling/visit-rules", SCHEDULER),
    route("POST /scheduling/visit-rules", SCHEDULER),
    route("GET /scheduling/no-show-rules", SCHEDULER),
    route("POST /scheduling/no-show-rules", SCHEDULER),
    route("GET /scheduling/messages", SCHEDULER),
    route("POST /scheduling/messages", SCHEDULER),
    route("GET /scheduling/message-templates", SCHEDULER),
    route(
        "POST /scheduling/message-templates",
        SCHEDULER,
        note="action=preview renders with sample values and saves nothing",
    ),
    route("POST /scheduling/message-templates/remove", SCHEDULER),
    route("GET /scheduling/api-keys", ADMIN),
    route("POST /scheduling/api-keys", ADMIN, note="the new key is shown once"),
    route("POST /scheduling/api-keys/{key_id}/revoke", ADMIN),
)


def by_route() -> dict[tuple[str, str], RouteAccess]:
    return {row.key: row for row in ACCESS}


# --- the table as docs/api.md shows it ----------------------------------------------------------

BEGIN = "<!-- access table: begin (python -m yuyue.web.access --write docs/api.md) -->"
END = "<!-- access table: end -->"
_CALLER_NAMES = {
    Caller.ANYONE: "anyone",
    Caller.CHANNEL_KEY: "channel key",
    Caller.KIOSK_KEY: "kiosk key",
    Caller.PATIENT: "patient",
}


def who_text(row: RouteAccess) -> str:
    if row.public:
        return "anyone"
    names = [_CALLER_NAMES[caller] for caller in Caller if caller in row.callers]
    if row.roles >= frozenset(Role):
        names.append("any staff")
    elif row.roles >= frozenset(WORKING):
        names.append("any staff but auditor")
    else:
        names.extend(role.value for role in Role if role in row.roles)
    return ", ".join(names)


def markdown() -> str:
    lines = [BEGIN, "| method | path | who may call it | note |", "| --- | --- | --- | --- |"]
    for row in ACCESS:
        note = row.note.replace("|", "\\|")
        lines.append(f"| {row.method} | `{row.path}` | {who_text(row)} | {note} |")
    lines.append(END)
    return "\n".join(lines)


def rendered_in(document: str) -> str | None:
    """The table as a document holds it, between the markers, or None."""
    found = re.search(re.escape(BEGIN) + r".*?" + re.escape(END), document, re.DOTALL)
    return found.group(0) if found else None


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--write":
        path = Path(argv[1])
        document = path.read_text(encoding="utf-8")
        if rendered_in(document) is None:
            print(f"{path} has no access table markers", file=sys.stderr)
            return 1
        path.write_text(
            re.sub(
                re.escape(BEGIN) + r".*?" + re.escape(END),
                lambda _: markdown(),
                document,
                flags=re.DOTALL,
            ),
            encoding="utf-8",
        )
        return 0
    print(markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
