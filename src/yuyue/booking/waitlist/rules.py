"""Pure waitlist rules: who may join, when the line closes, the entry's states, which
waiters a returned place may go to. No I/O; every "now" is passed in."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from yuyue.booking.rules import LimitExceeded, Policy, SessionFacts
from yuyue.booking.waitlist.states import ACTIVE_ENTRY_STATUSES, WaitlistStatus
from yuyue.kit import i18n
from yuyue.kit.errors import InvalidState, YuyueError
from yuyue.kit.localtime import format_local, local_instant
from yuyue.scheduling.enums import Channel
from yuyue.scheduling.rules import pools_for_channel

W = WaitlistStatus


# --- errors -------------------------------------------------------------------------------


class WaitlistDisabled(YuyueError):
    code = "waitlist_disabled"
    status = 409


class WaitlistClosed(YuyueError):
    code = "waitlist_closed"
    status = 409

    def extensions(self) -> dict[str, str]:
        return {"closed_at": str(self.values["closed_at"])}


class WaitlistNotNeeded(YuyueError):
    code = "waitlist_not_needed"
    status = 409

    def extensions(self) -> dict[str, int]:
        return {"remaining": int(self.values["remaining"])}


class AlreadyWaiting(YuyueError):
    code = "already_waiting"
    status = 409


class WaitlistFull(YuyueError):
    code = "waitlist_full"
    status = 409

    def extensions(self) -> dict[str, int]:
        return {"maximum": int(self.values["maximum"])}


class OfferExpired(YuyueError):
    code = "offer_expired"
    status = 409


i18n.register(
    {
        "title.waitlist_disabled": ("未开放候补", "No waitlist"),
        "error.waitlist_disabled": (
            "该出诊未开放候补。",
            "This session has no waitlist.",
        ),
        "title.waitlist_closed": ("候补已截止", "Waitlist closed"),
        "error.waitlist_closed": (
            "该出诊的候补已于 {closed_local} 截止。",
            "The waitlist for this session closed at {closed_local}.",
        ),
        "title.waitlist_not_needed": ("无需候补", "Places are still available"),
        "error.waitlist_not_needed": (
            "该出诊还有 {remaining} 个号可直接预约，无需候补。",
            "This session still has {remaining} places you can book directly.",
        ),
        "title.already_waiting": ("已在候补中", "Already on the waitlist"),
        "error.already_waiting": (
            "该就诊人已在本次出诊的候补队列中。",
            "This patient is already on the waitlist for this session.",
        ),
        "title.waitlist_full": ("候补数量已达上限", "Too many waitlists"),
        "error.waitlist_full": (
            "同一就诊人最多同时候补 {maximum} 个出诊，请先取消其他候补。",
            "A patient may wait for at most {maximum} sessions at a time; leave another first.",
        ),
        "title.offer_expired": ("候补号已过期", "Offer expired"),
        "error.offer_expired": (
            "为您保留的候补号已超时，已转给下一位候补者。",
            "The place offered to you was not taken in time and has passed to the next waiter.",
        ),
        "what.waitlist_entry": ("候补记录", "waitlist entry"),
        "waitlist_status.waiting": ("候补中", "waiting"),
        "waitlist_status.offered": ("已为您保留号源", "place offered"),
        "waitlist_status.accepted": ("已接受", "accepted"),
        "waitlist_status.declined": ("已放弃", "declined"),
        "waitlist_status.lapsed": ("未按时确认", "lapsed"),
        "waitlist_status.left": ("已取消候补", "left"),
        "waitlist_status.closed": ("候补已结束", "closed"),
        "waitlist_status.skipped": ("不符合预约条件", "skipped"),
    }
)


# --- the entry's states -----------------------------------------------------------------

TRANSITIONS: dict[tuple[WaitlistStatus, str], WaitlistStatus] = {
    (W.WAITING, "offer"): W.OFFERED,
    (W.WAITING, "leave"): W.LEFT,
    (W.WAITING, "skip"): W.SKIPPED,
    (W.WAITING, "close"): W.CLOSED,
    (W.OFFERED, "accept"): W.ACCEPTED,
    (W.OFFERED, "decline"): W.DECLINED,
    (W.OFFERED, "lapse"): W.LAPSED,
    (W.OFFERED, "close"): W.CLOSED,
    # A paid offer accepted but never paid: its hold expires like any other.
    (W.ACCEPTED, "lapse"): W.LAPSED,
}


def transition(status: WaitlistStatus, action: str) -> WaitlistStatus:
    try:
        return TRANSITIONS[(status, action)]
    except KeyError:
        raise InvalidState(state=status.value, action=action) from None


def is_active(status: WaitlistStatus) -> bool:
    return status in ACTIVE_ENTRY_STATUSES


# --- joining ------------------------------------------------------------------------------


def closes_at(policy: Policy, session: SessionFacts) -> datetime:
    start = local_instant(session.date, session.start_time, session.timezone)
    return start - timedelta(minutes=policy.waitlist_closes_minutes)


def is_open(policy: Policy, session: SessionFacts, *, now: datetime) -> bool:
    return policy.waitlist_enabled and now < closes_at(policy, session)


def check_open(policy: Policy, session: SessionFacts, *, now: datetime) -> None:
    if not policy.waitlist_enabled:
        raise WaitlistDisabled()
    closed = closes_at(policy, session)
    if now >= closed:
        raise WaitlistClosed(
            closed_at=closed.isoformat(), closed_local=format_local(closed, session.timezone)
        )


@dataclass(frozen=True, slots=True)
class EntryFacts:
    """One of the patient's waitlist entries."""

    session_id: uuid.UUID
    status: WaitlistStatus


def check_can_join(
    policy: Policy,
    session: SessionFacts,
    *,
    remaining_for_channel: int,
    entries: Iterable[EntryFacts],
) -> None:
    """The session really is full for the caller's channel, and the patient is not already
    waiting here or in too many other sessions. (`check_open`, and the booking rules for
    session state, window, demographics, blacklist and limits, run before this one.)"""
    if remaining_for_channel > 0:
        raise WaitlistNotNeeded(remaining=remaining_for_channel)
    active = [e for e in entries if is_active(e.status)]
    if any(e.session_id == session.id for e in active):
        raise AlreadyWaiting()
    if len(active) >= policy.waitlist_max_active:
        raise WaitlistFull(maximum=policy.waitlist_max_active)


# --- offering -----------------------------------------------------------------------------


def channels_for_pool(pool: str) -> tuple[Channel, ...]:
    """Channels that may take a place of this pool: a returned place goes only to waiters
    who could have booked it themselves."""
    return tuple(c for c in Channel if pool in pools_for_channel(c))


def offer_expires_at(policy: Policy, *, now: datetime) -> datetime:
    return now + timedelta(minutes=policy.waitlist_offer_minutes)


def paid_hold_expires_at(policy: Policy, *, offer_expires: datetime, now: datetime) -> datetime:
    """Accepting a paid offer leaves a hold for payment: never shorter than an ordinary
    booking's hold, and never shorter than what the offer still had."""
    return max(offer_expires, now + timedelta(minutes=policy.hold_minutes))


def skip_reason(refusal: YuyueError) -> str:
    """What an entry records when the booking rules refuse its waiter at offer time."""
    if isinstance(refusal, LimitExceeded):
        return f"{refusal.code}:{refusal.values['limit']}"[:48]
    return refusal.code[:48]


def position_in_line(
    entry: tuple[datetime, uuid.UUID], waiting: Iterable[tuple[datetime, uuid.UUID]]
) -> int:
    """1 for the next waiter: a line is ordered by join time, then id (as the offer query)."""
    return 1 + sum(1 for other in waiting if other < entry)
