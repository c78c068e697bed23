"""The staff console's menu, and what an audit entry may show on screen. Pure.

The menu is one declared table: each entry a page of the floor or the console, with the
roles that may open it. The staff home lists the entries of the signed-in roles (an
administrator holds every role, as `staff.rules.Actor.has_role` says); the console's own
pages take their roles from here, and `tests/frontdesk/test_console.py` opens every entry as
every role, so the table cannot drift from what the pages allow.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from yuyue.patients.rules import mask_id_number, mask_phone, mask_text
from yuyue.staff.enums import Role
from yuyue.staff.rules import ACCOUNT_MANAGERS, AUDIT_READERS

EVERY_ROLE: frozenset[Role] = frozenset(Role)
# The staff context decides who manages accounts (administrators) and who reads the audit
# trail (auditors and administrators); the menu follows it.
ACCOUNTS_ROLES: frozenset[Role] = frozenset(ACCOUNT_MANAGERS)
AUDIT_ROLES: frozenset[Role] = frozenset(AUDIT_READERS)


@dataclass(frozen=True, slots=True)
class ConsoleEntry:
    """One page of the console: its key (for tests and screens), its path, the i18n keys of
    its label, description and group, words a person may search it by, and who may open it."""

    key: str
    path: str
    label: str
    description: str
    group: str
    roles: frozenset[Role]
    keywords: tuple[str, ...] = ()


CONSOLE: tuple[ConsoleEntry, ...] = (
    ConsoleEntry(
        "desk",
        "/desk",
        "console.entry.desk",
        "console.entry.desk_hint",
        "console.group.visit_day",
        frozenset({Role.NURSE, Role.REGISTRAR}),
        ("分诊", "报到", "现场挂号", "triage", "check-in", "walk-in", "queue"),
    ),
    ConsoleEntry(
        "window",
        "/desk/window",
        "console.entry.window",
        "console.entry.window_hint",
        "console.group.visit_day",
        frozenset({Role.REGISTRAR}),
        ("挂号", "窗口", "收费", "退号", "退费", "registration", "window", "cash", "refund"),
    ),
    ConsoleEntry(
        "appeals",
        "/desk/appeals",
        "console.entry.appeals",
        "console.entry.appeals_hint",
        "console.group.visit_day",
        frozenset({Role.REGISTRAR}),
        ("爽约", "申诉", "no-show", "ban"),
    ),
    ConsoleEntry(
        "doctor",
        "/doctor",
        "console.entry.doctor",
        "console.entry.doctor_hint",
        "console.group.visit_day",
        frozenset({Role.DOCTOR}),
        ("叫号", "就诊", "call", "consultation"),
    ),
    ConsoleEntry(
        "approvals",
        "/desk/approvals",
        "console.entry.approvals",
        "console.entry.approvals_hint",
        "console.group.visit_day",
        frozenset({Role.SUPERVISOR, Role.REGISTRAR, Role.NURSE}),
        ("审批", "退号", "改约", "更换就诊人", "approve", "approval", "request"),
    ),
    ConsoleEntry(
        "timetable",
        "/scheduling/week",
        "console.entry.timetable",
        "console.entry.timetable_hint",
        "console.group.scheduling",
        frozenset({Role.SCHEDULER}),
        ("排班", "出诊", "号源", "加号", "加诊", "schedule", "week", "places", "extra"),
    ),
    ConsoleEntry(
        "templates",
        "/scheduling/templates",
        "console.entry.templates",
        "console.entry.templates_hint",
        "console.group.scheduling",
        frozenset({Role.SCHEDULER}),
        ("排班", "模板", "生成", "下周", "timetable", "template", "generate"),
    ),
    ConsoleEntry(
        "scheduling_settings",
        "/scheduling/settings",
        "console.entry.scheduling_settings",
        "console.entry.scheduling_settings_hint",
        "console.group.scheduling",
        frozenset({Role.SCHEDULER}),
        ("号源比例", "放号", "退号", "锁号", "限号", "pools", "ratios", "policy", "release"),
    ),
    ConsoleEntry(
        "visit_rules",
        "/scheduling/visit-rules",
        "console.entry.visit_rules",
        "console.entry.visit_rules_hint",
        "console.group.scheduling",
        frozenset({Role.SCHEDULER}),
        ("就诊规则", "报到", "迟到", "过号", "优先", "check-in", "late", "priority", "batch"),
    ),
    ConsoleEntry(
        "no_show_rules",
        "/scheduling/no-show-rules",
        "console.entry.no_show_rules",
        "console.entry.no_show_rules_hint",
        "console.group.scheduling",
        frozenset({Role.SCHEDULER}),
        ("爽约", "黑名单", "暂停预约", "no-show", "ban", "blacklist", "suspension"),
    ),
    ConsoleEntry(
        "message_settings",
        "/scheduling/messages",
        "console.entry.message_settings",
        "console.entry.message_settings_hint",
        "console.group.scheduling",
        frozenset({Role.SCHEDULER}),
        ("消息", "提醒", "免打扰", "短信", "messages", "reminders", "quiet hours", "sms"),
    ),
    ConsoleEntry(
        "message_templates",
        "/scheduling/message-templates",
        "console.entry.message_templates",
        "console.entry.message_templates_hint",
        "console.group.scheduling",
        frozenset({Role.SCHEDULER}),
        ("消息模板", "短信", "措辞", "科室", "templates", "wording", "department", "sms"),
    ),
    ConsoleEntry(
        "departments",
        "/scheduling/departments",
        "console.entry.departments",
        "console.entry.departments_hint",
        "console.group.scheduling",
        frozenset({Role.SCHEDULER}),
        ("科室", "新增科室", "停用", "年龄", "departments", "add department", "deactivate"),
    ),
    ConsoleEntry(
        "doctors",
        "/scheduling/doctors",
        "console.entry.doctors",
        "console.entry.doctors_hint",
        "console.group.scheduling",
        frozenset({Role.SCHEDULER}),
        ("科室", "医生", "新增医生", "号别", "诊室", "departments", "doctors", "level", "room"),
    ),
    ConsoleEntry(
        "stop_clinic",
        "/desk/stop-clinic",
        "console.entry.stop_clinic",
        "console.entry.stop_clinic_hint",
        "console.group.scheduling",
        frozenset({Role.SCHEDULER}),
        ("停诊", "替诊", "换医生", "stop", "cancel clinic", "substitute"),
    ),
    ConsoleEntry(
        "announcements",
        "/desk/announcements",
        "console.entry.announcements",
        "console.entry.announcements_hint",
        "console.group.scheduling",
        frozenset({Role.SCHEDULER}),
        ("公告", "通知", "延迟", "闭院", "notice", "announcement", "delay"),
    ),
    ConsoleEntry(
        "api_keys",
        "/scheduling/api-keys",
        "console.entry.api_keys",
        "console.entry.api_keys_hint",
        "console.group.scheduling",
        frozenset({Role.ADMIN}),
        ("密钥", "渠道", "接口", "自助机", "api key", "channel", "kiosk", "integration"),
    ),
    ConsoleEntry(
        "reports",
        "/reports/bookings-by-channel",
        "console.entry.reports",
        "console.entry.reports_hint",
        "console.group.insight",
        frozenset({Role.FINANCE, Role.SCHEDULER}),
        ("报表", "统计", "爽约率", "候诊", "收入", "reports", "charts", "no-shows", "revenue"),
    ),
    ConsoleEntry(
        "quota_advice",
        "/reports/quota-advice",
        "console.entry.quota_advice",
        "console.entry.quota_advice_hint",
        "console.group.insight",
        # Finance reads it (as every report); only the scheduler's page has the accept button.
        frozenset({Role.FINANCE, Role.SCHEDULER}),
        ("号源", "配额", "号池比例", "放号", "quota", "pool ratios", "capacity"),
    ),
    ConsoleEntry(
        "finance_orders",
        "/finance/orders",
        "console.entry.finance_orders",
        "console.entry.finance_orders_hint",
        "console.group.finance",
        frozenset({Role.FINANCE}),
        ("订单", "退款", "导出", "orders", "refunds", "export"),
    ),
    ConsoleEntry(
        "finance_reconciliation",
        "/finance/reconciliation",
        "console.entry.finance_reconciliation",
        "console.entry.finance_reconciliation_hint",
        "console.group.finance",
        frozenset({Role.FINANCE}),
        ("对账", "差异", "reconciliation", "statement"),
    ),
    ConsoleEntry(
        "accounts",
        "/staff/accounts",
        "console.entry.accounts",
        "console.entry.accounts_hint",
        "console.group.administration",
        ACCOUNTS_ROLES,
        ("账号", "员工", "角色", "密码", "停用", "accounts", "users", "roles", "password"),
    ),
    ConsoleEntry(
        "audit",
        "/staff/audit",
        "console.entry.audit",
        "console.entry.audit_hint",
        "console.group.administration",
        AUDIT_ROLES,
        ("审计", "日志", "操作记录", "audit", "log", "history"),
    ),
    ConsoleEntry(
        "password",
        "/staff/password",
        "console.entry.password",
        "console.entry.password_hint",
        "console.group.me",
        EVERY_ROLE,
        ("密码", "password"),
    ),
    ConsoleEntry(
        "sessions",
        "/staff/sessions",
        "console.entry.sessions",
        "console.entry.sessions_hint",
        "console.group.me",
        EVERY_ROLE,
        ("登录", "设备", "退出", "sessions", "sign-ins", "devices"),
    ),
)


def may_open(entry: ConsoleEntry, roles: Iterable[Role]) -> bool:
    held = frozenset(roles)
    return Role.ADMIN in held or bool(entry.roles & held)


def menu_for(roles: Iterable[Role]) -> list[ConsoleEntry]:
    """The entries these roles may open, in the table's order."""
    held = frozenset(roles)
    return [entry for entry in CONSOLE if may_open(entry, held)]


def matches(text: str, query: str) -> bool:
    """Whether every word of the query occurs in the text (case and width aside); an empty
    query matches everything. The browser's filter (static/console.js) does the same."""
    haystack = text.casefold()
    return all(word in haystack for word in query.casefold().split())


# --- what the audit viewer shows ------------------------------------------------------------

# Keys whose values are a document number or a phone, wherever they occur in an entry.
_ID_KEYS = re.compile(r"(^|_)(id_number|identity|document_number|id_card)($|_)")
_PHONE_KEYS = re.compile(r"(^|_)(phone|mobile|telephone)($|_)")


def masked(value: Any, key: str = "") -> Any:
    """An audit entry's before/after value as it may be shown: values under an identity or
    phone key masked whole, numbers found in any other text masked where they stand."""
    if isinstance(value, Mapping):
        return {str(k): masked(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(v, key) for v in value]
    if isinstance(value, str):
        lowered = key.casefold()
        if _ID_KEYS.search(lowered):
            return mask_id_number(value)
        if _PHONE_KEYS.search(lowered):
            return mask_phone(value)
        return mask_text(value)
    return value


def audit_actor_name(audit_name: str) -> tuple[str, str]:
    """The kind and the readable name of an audit name (`staff:<name>:<id>`,
    `channel:<channel>:<id>`, `system:-:<job>`)."""
    kind, _, rest = audit_name.partition(":")
    name, _, ident = rest.rpartition(":")
    return kind, name if name and name != "-" else ident or rest
