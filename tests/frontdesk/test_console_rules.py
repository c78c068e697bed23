"""The console's menu table and what the audit viewer may show: pure, no database."""

from __future__ import annotations

import pytest

from yuyue.frontdesk import rules
from yuyue.staff.enums import Role

# What each role's menu holds, written out by hand (not derived from the table), so a change
# to the table that gives a role more or less fails here first.
EXPECTED_MENU: dict[frozenset[Role], list[str]] = {
    frozenset({Role.ADMIN}): [
        "desk",
        "window",
        "appeals",
        "doctor",
        "approvals",
        "timetable",
        "templates",
        "scheduling_settings",
        "visit_rules",
        "no_show_rules",
        "message_settings",
        "message_templates",
        "departments",
        "doctors",
        "stop_clinic",
        "announcements",
        "api_keys",
        "reports",
        "quota_advice",
        "finance_orders",
        "finance_reconciliation",
        "accounts",
        "audit",
        "password",
        "sessions",
    ],
    frozenset({Role.SCHEDULER}): [
        "timetable",
        "templates",
        "scheduling_settings",
        "visit_rules",
        "no_show_rules",
        "message_settings",
        "message_templates",
        "departments",
        "doctors",
        "stop_clinic",
        "announcements",
        "reports",
        "quota_advice",
        "password",
        "sessions",
    ],
    frozenset({Role.REGISTRAR}): ["desk", "window", "appeals", "approvals", "password", "sessions"],
    frozenset({Role.NURSE}): ["desk", "approvals", "password", "sessions"],
    frozenset({Role.SUPERVISOR}): ["approvals", "password", "sessions"],
    frozenset({Role.DOCTOR}): ["doctor", "password", "sessions"],
    frozenset({Role.AUDITOR}): ["audit", "password", "sessions"],
    frozenset({Role.FINANCE}): [
        "reports",
        "quota_advice",
        "finance_orders",
        "finance_reconciliation",
        "password",
        "sessions",
    ],
    frozenset({Role.NURSE, Role.FINANCE}): [
        "desk",
        "approvals",
        "reports",
        "quota_advice",
        "finance_orders",
        "finance_reconciliation",
        "password",
        "sessions",
    ],
    frozenset(): [],
}


class TestMenu:
    @pytest.mark.parametrize(
        ("roles", "keys"), list(EXPECTED_MENU.items()), ids=lambda v: str(sorted(v))
    )
    def test_each_role_sees_only_its_entries(self, roles: frozenset[Role], keys: list[str]) -> None:
        assert [entry.key for entry in rules.menu_for(roles)] == keys

    def test_every_role_is_in_the_table_test(self) -> None:
        assert {role for roles in EXPECTED_MENU for role in roles} == set(Role)

    def test_keys_and_paths_are_unique(self) -> None:
        assert len({entry.key for entry in rules.CONSOLE}) == len(rules.CONSOLE)
        assert len({entry.path for entry in rules.CONSOLE}) == len(rules.CONSOLE)

    def test_accounts_and_audit_follow_the_staff_context(self) -> None:
        assert {Role.ADMIN} == rules.ACCOUNTS_ROLES
        # Auditors read the audit trail (and administrators, who hold every role).
        assert {Role.AUDITOR} == rules.AUDIT_ROLES


class TestSearch:
    @pytest.mark.parametrize(
        ("query", "found"),
        [
            ("", True),
            ("对账", True),
            ("RECONCILIATION", True),
            ("daily   reconciliation", True),
            ("reconciliation refunds", False),
            ("排班", False),
        ],
    )
    def test_every_word_must_occur(self, query: str, found: bool) -> None:
        text = "每日对账 与微信支付对账 daily reconciliation statement"
        assert rules.matches(text, query) is found


class TestMasking:
    def test_identity_and_phone_keys_are_masked_whole(self) -> None:
        shown = rules.masked(
            {"id_number": "110101199003074514", "phone": "13912345678", "status": "booked"}
        )
        assert shown == {
            "id_number": "1101**********4514",
            "phone": "139****5678",
            "status": "booked",
        }

    def test_numbers_in_free_text_nested_anywhere_are_masked(self) -> None:
        shown = rules.masked(
            {
                "reason": "患者 110101199003074514 来电 13800138000，另一 +86 13912345678",
                "notes": [{"text": "旧证 110101900307451"}],
                "count": 3,
                "reference": "order 4200000012345678901",
            }
        )
        assert shown["reason"] == "患者 1101**********4514 来电 138****8000，另一 +86 139****5678"
        assert shown["notes"] == [{"text": "旧证 1101*******7451"}]
        assert shown["count"] == 3
        # A longer run of digits (a provider's transaction id) is not an ID number.
        assert shown["reference"] == "order 4200000012345678901"

    def test_values_without_numbers_are_unchanged(self) -> None:
        assert rules.masked(None) is None
        assert rules.masked({"roles": ["nurse"], "active": False}) == {
            "roles": ["nurse"],
            "active": False,
        }


class TestActorNames:
    @pytest.mark.parametrize(
        ("audit_name", "shown"),
        [
            ("staff:张护士长:0b6c", ("staff", "张护士长")),
            ("channel:app:1f2e", ("channel", "app")),
            ("system:-:expire-holds", ("system", "expire-holds")),
        ],
    )
    def test_readable_names(self, audit_name: str, shown: tuple[str, str]) -> None:
        assert rules.audit_actor_name(audit_name) == shown
