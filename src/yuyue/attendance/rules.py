"""Pure no-show rules: when a booking becomes a no-show, when no-shows make a ban, how
long the ban is, and what an appeal may say. No I/O; `now` is injected."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from yuyue.kit import i18n
from yuyue.kit.errors import YuyueError
from yuyue.kit.schemas import has_control_characters

# --- errors -------------------------------------------------------------------------------


class InvalidAppeal(YuyueError):
    code = "invalid_appeal"
    status = 422


class AppealAlreadyOpen(YuyueError):
    code = "appeal_already_open"
    status = 409


class BanNotActive(YuyueError):
    code = "ban_not_active"
    status = 409


class DecisionNoteRequired(YuyueError):
    code = "decision_note_required"
    status = 422


i18n.register(
    {
        "title.invalid_appeal": ("申诉内容有误", "Invalid appeal"),
        "error.invalid_appeal": (
            "申诉内容须为 {minimum}–{maximum} 个字，且不能含控制字符。",
            "An appeal must be {minimum}–{maximum} characters long, without control characters.",
        ),
        "title.appeal_already_open": ("申诉处理中", "Appeal already open"),
        "error.appeal_already_open": (
            "该暂停已有一份申诉正在处理，请等待工作人员答复。",
            "An appeal against this suspension is already waiting for staff; please wait "
            "for their answer.",
        ),
        "title.ban_not_active": ("暂停已结束", "Suspension not in force"),
        "error.ban_not_active": (
            "该暂停预约已结束或已解除，无需申诉。",
            "This suspension has ended or was lifted; there is nothing to appeal.",
        ),
        "title.decision_note_required": ("请填写理由", "Reason required"),
        "error.decision_note_required": (
            "驳回申诉时请写明理由，患者会收到这段说明。",
            "Rejecting an appeal needs a reason; the patient receives it.",
        ),
        "what.appeal": ("申诉", "appeal"),
        "what.blacklist_entry": ("暂停预约记录", "suspension"),
        "no_show.reason": (
            "{days} 天内爽约 {count} 次（{dates}）",
            "{count} missed visits within {days} days ({dates})",
        ),
    }
)

# --- the policy ---------------------------------------------------------------------------

APPEAL_MIN = 5
APPEAL_MAX = 1000


@dataclass(frozen=True, slots=True)
class Policy:
    """The defaults are the requirements': 3 no-shows within 365 days suspend self-service
    booking for 180 days; a second ban within the window lasts twice as long."""

    threshold: int = 3
    window_days: int = 365
    ban_days: tuple[int, ...] = (180, 360)
    # A booking becomes a no-show this long after its session ends without a check-in.
    grace_minutes: int = 30

    def ban_length(self, step: int) -> int:
        """Days of the `step`-th ban within the window (1 = first); the last one repeats."""
        return self.ban_days[min(max(step, 1), len(self.ban_days)) - 1]


def check_ban_days(days: Sequence[int]) -> tuple[int, ...]:
    """One to five lengths of 1–3650 days, never shorter than the one before."""
    if not 1 <= len(days) <= 5:
        raise ValueError("give one to five ban lengths")
    if any(not 1 <= d <= 3650 for d in days):
        raise ValueError("each ban lasts 1–3650 days")
    if any(later < earlier for earlier, later in pairwise(days)):
        raise ValueError("a later ban is never shorter than an earlier one")
    return tuple(days)


# --- which bookings are no-shows ----------------------------------------------------------


def due_cutoff(now: datetime, *, grace_minutes: int, tz: str) -> tuple[date, time]:
    """The hospital-local (date, time) a session must have ended by for its unattended
    bookings to be no-shows at `now`: `now` minus the grace, in the hospital's zone."""
    local = (now - timedelta(minutes=grace_minutes)).astimezone(ZoneInfo(tz))
    return local.date(), local.time().replace(tzinfo=None)


def is_due(session_date: date, end_time: time, cutoff: tuple[date, time]) -> bool:
    """Whether a session that ends at (date, end_time), local, ended by the cutoff."""
    return (session_date, end_time) <= cutoff


# --- when no-shows make a ban -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoShow:
    appointment_id: uuid.UUID
    visit_date: date


@dataclass(frozen=True, slots=True)
class PriorBan:
    """A ban the no-show policy made earlier, with the no-shows it counted."""

    starts_at: datetime
    ends_at: datetime
    lifted_at: datetime | None
    appointment_ids: frozenset[uuid.UUID] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class BanDecision:
    counted: tuple[NoShow, ...]
    step: int
    days: int
    starts_at: datetime
    ends_at: datetime

    @property
    def visit_dates(self) -> list[date]:
        return sorted({n.visit_date for n in self.counted})


def decide_ban(
    policy: Policy,
    no_shows: Iterable[NoShow],
    prior: Iterable[PriorBan],
    *,
    today: date,
    now: datetime,
) -> BanDecision | None:
    """A ban when the no-shows inside the window that no earlier ban counted reach the
    threshold; otherwise None. Counted no-shows are never counted again, so running this
    twice over the same facts makes at most one ban.

    Escalation: the step is one more than the bans made within the window and not lifted
    on appeal. A ban made while another is in force starts when that one ends, so two
    bans never overlap."""
    earlier = list(prior)
    used = frozenset().union(*(b.appointment_ids for b in earlier))
    since = today - timedelta(days=policy.window_days)
    counted = tuple(
        sorted(
            (n for n in no_shows if n.visit_date > since and n.appointment_id not in used),
            key=lambda n: (n.visit_date, str(n.appointment_id)),
        )
    )
    if len(counted) < policy.threshold:
        return None
    recent = [
        b
        for b in earlier
        if b.lifted_at is None and b.starts_at > now - timedelta(days=policy.window_days)
    ]
    step = len(recent) + 1
    days = policy.ban_length(step)
    in_force = [b.ends_at for b in earlier if b.lifted_at is None and b.ends_at > now]
    starts_at = max([now, *in_force])
    return BanDecision(counted, step, days, starts_at, starts_at + timedelta(days=days))


def ban_reason(decision: BanDecision, policy: Policy, locale: str = i18n.DEFAULT_LOCALE) -> str:
    """The ban's reason in plain words, naming the days of the missed visits the way the
    booking refusal that quotes it writes its own date and time."""
    joiner = ", " if locale == "en" else "、"
    return i18n.translate(
        "no_show.reason",
        locale,
        days=policy.window_days,
        count=len(decision.counted),
        dates=joiner.join(i18n.format_day(d, locale) for d in decision.visit_dates),
    )


def is_in_force(*, ends_at: datetime, lifted_at: datetime | None, now: datetime) -> bool:
    """A ban can still be appealed while it has not ended and was not lifted (one that
    starts later, after the current one, counts too)."""
    return lifted_at is None and now < ends_at


# --- appeals ------------------------------------------------------------------------------


def check_appeal_text(raw: str) -> str:
    """The appeal as written, trimmed; 5–1000 characters, line breaks allowed."""
    text = raw.strip()
    if not APPEAL_MIN <= len(text) <= APPEAL_MAX or has_control_characters(text):
        raise InvalidAppeal(minimum=APPEAL_MIN, maximum=APPEAL_MAX)
    return text


def check_decision(*, accept: bool, note: str | None) -> str | None:
    """A rejection must say why; an acceptance may."""
    cleaned = (note or "").strip() or None
    if not accept and cleaned is None:
        raise DecisionNoteRequired()
    return cleaned
