"""The quota advice (号源配额建议), as a pure function: the last weeks of one department or
doctor in, a recommendation for the next period out — places per session to add or remove,
and the split of places between remote booking (`appointment`), on-site registration
(`onsite`) and the reserved pool — with the reasons, each a stable code and the figures it
rests on. No database here; docs/reports.md#quota-advice states the same thresholds.

The advice is deliberately plain: a handful of thresholds a scheduler can check by hand
against the reports, moves of whole steps (5 percentage points, 20 % of a session's places
at most), and a `keep` whenever the figures are too few to say anything. The scheduler
accepts it, edits it or ignores it; nothing here changes a session."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from yuyue.scheduling.rules import APPOINTMENT, ONSITE

# Fewer sessions than this over the period: too little to advise on.
MIN_SESSIONS = 4
# A scope "sells out" when at least this share of its sessions sold every remote place…
SELLOUT_SHARE = 0.5
# …and "sells out fast" when, besides, the median sell-out came this soon after the release.
FAST_SELLOUT_MINUTES = 120
# Waitlist joins that got no place, per session, from which the waitlist is "long".
LONG_WAITLIST_PER_SESSION = 2.0
# Places used (remote and local, kept) under this share of the capacity, with no sell-out
# and on-site not busy: the sessions are "under-used".
LOW_USE = 0.6
# On-site places used (walk-ins and the reserved places handed over in the morning): at or
# above this share on-site is "busy", below ONSITE_IDLE it is "idle".
ONSITE_BUSY = 0.9
ONSITE_IDLE = 0.5
# No-shows of the patients due to come, from which no-shows are "many".
NO_SHOW_HIGH = 0.15
# A change of the split moves this many percentage points (twice as many when remote booking
# sells out while on-site places sit idle).
STEP = 5
# The split never goes below these shares.
MIN_ONSITE = 10
MIN_APPOINTMENT = 20
# A capacity change is at most this share of a session's places (and at least one place).
MAX_CAPACITY_STEP = 0.2
# With fast sell-outs but no long waitlist, add this share of a session's places.
FAST_SELLOUT_GROWTH = 0.1


class ReasonCode(StrEnum):
    TOO_LITTLE_DATA = "too_little_data"
    SELLS_OUT_FAST = "sells_out_fast"
    SELLS_OUT = "sells_out"
    WAITLIST_LONG = "waitlist_long"
    NO_SHOWS_FIRST = "no_shows_first"
    MANY_NO_SHOWS = "many_no_shows"
    UNDER_USED = "under_used"
    ONSITE_BUSY = "onsite_busy"
    ONSITE_IDLE = "onsite_idle"
    BOTH_BUSY = "both_busy"
    CUSTOM_POOLS = "custom_pools"
    AT_LIMIT = "at_limit"
    BALANCED = "balanced"


@dataclass(frozen=True, slots=True)
class Demand:
    """One department's or doctor's sessions (not stopped) over the period, summed."""

    sessions: int
    capacity: int  # every place of every pool
    remote_capacity: int  # the places remote channels book
    remote_used: int  # kept (not cancelled, not expired) from the remote pools
    local_used: int  # kept from the on-site and reserved pools: walk-ins at the window
    sold_out: int  # sessions whose remote places all went
    median_sellout_minutes: int | None  # after the release, over the sessions that sold out
    waitlist_joined: int
    waitlist_accepted: int
    attended: int
    no_show: int

    @property
    def local_capacity(self) -> int:
        return self.capacity - self.remote_capacity


@dataclass(frozen=True, slots=True)
class Reason:
    code: ReasonCode
    values: Mapping[str, int | float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Advice:
    capacity_change: int  # places per session: > 0 add, < 0 remove, 0 keep
    current: Mapping[str, int]
    ratios: Mapping[str, int]  # the recommended split (the current one when kept)
    reasons: tuple[Reason, ...]

    @property
    def changes_split(self) -> bool:
        return dict(self.ratios) != dict(self.current)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(reason.code.value for reason in self.reasons)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole > 0 else None


def _percent(value: float) -> int:
    return round(value * 100)


def median(values: Sequence[int]) -> int | None:
    """The lower median (a real observation, in whole minutes); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2]


def percentile(values: Sequence[int], share: float) -> int | None:
    """The nearest-rank percentile (a real observation); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def _shift(current: Mapping[str, int], points: int) -> tuple[dict[str, int], bool]:
    """Moves `points` from on-site to appointment (negative: the other way), within the
    floors; returns the new split and whether a floor cut the move short."""
    ratios = dict(current)
    if points > 0:
        moved = min(points, max(0, ratios[ONSITE] - MIN_ONSITE))
    else:
        moved = -min(-points, max(0, ratios[APPOINTMENT] - MIN_APPOINTMENT))
    ratios[APPOINTMENT] += moved
    ratios[ONSITE] -= moved
    return ratios, moved != points


def advise(demand: Demand, current: Mapping[str, int]) -> Advice:
    """The recommendation for one scope from its last weeks (see the module's thresholds)."""
    if demand.sessions < MIN_SESSIONS or demand.capacity <= 0:
        return Advice(
            0,
            dict(current),
            dict(current),
            (Reason(ReasonCode.TOO_LITTLE_DATA, {"sessions": demand.sessions}),),
        )
    reasons: list[Reason] = []
    sessions = demand.sessions
    per_session = demand.capacity / sessions
    largest_step = max(1, round(per_session * MAX_CAPACITY_STEP))

    sold_share = demand.sold_out / sessions
    selling_out = sold_share >= SELLOUT_SHARE
    fast = (
        selling_out
        and demand.median_sellout_minutes is not None
        and demand.median_sellout_minutes <= FAST_SELLOUT_MINUTES
    )
    unmet = max(0, demand.waitlist_joined - demand.waitlist_accepted)
    unmet_per_session = unmet / sessions
    waitlist_long = unmet_per_session >= LONG_WAITLIST_PER_SESSION
    no_show_rate = _share(demand.no_show, demand.attended + demand.no_show)
    many_no_shows = no_show_rate is not None and no_show_rate >= NO_SHOW_HIGH
    onsite_use = _share(demand.local_used, demand.local_capacity)
    onsite_busy = onsite_use is not None and onsite_use >= ONSITE_BUSY
    onsite_idle = onsite_use is not None and onsite_use < ONSITE_IDLE
    use = (demand.remote_used + demand.local_used) / demand.capacity

    if selling_out:
        values: dict[str, int | float] = {
            "sold_out": demand.sold_out,
            "sessions": sessions,
            "share": _percent(sold_share),
        }
        if demand.median_sellout_minutes is not None:
            values["minutes"] = demand.median_sellout_minutes
        reasons.append(Reason(ReasonCode.SELLS_OUT_FAST if fast else ReasonCode.SELLS_OUT, values))

    # --- places per session ---------------------------------------------------------------
    change = 0
    if waitlist_long:
        change = min(largest_step, max(1, round(unmet_per_session)))
        reasons.append(
            Reason(
                ReasonCode.WAITLIST_LONG,
                {"unmet": unmet, "per_session": round(unmet_per_session, 1)},
            )
        )
    elif fast:
        change = min(largest_step, max(1, round(per_session * FAST_SELLOUT_GROWTH)))
    if change > 0 and many_no_shows:
        # Places booked and never used come back first: ask no more than the shortfall.
        no_shows_per_session = demand.no_show / sessions
        change = max(0, change - round(no_shows_per_session))
        reasons.append(
            Reason(
                ReasonCode.NO_SHOWS_FIRST,
                {
                    "rate": _percent(no_show_rate or 0),
                    "per_session": round(no_shows_per_session, 1),
                },
            )
        )
    elif not selling_out and not onsite_busy and use < LOW_USE:
        unused_per_session = (demand.capacity - demand.remote_used - demand.local_used) / sessions
        change = -min(largest_step, max(1, math.floor(unused_per_session / 2)))
        reasons.append(
            Reason(
                ReasonCode.UNDER_USED,
                {"use": _percent(use), "unused": round(unused_per_session, 1)},
            )
        )

    # --- the split ------------------------------------------------------------------------
    points = 0
    if selling_out and onsite_busy:
        reasons.append(Reason(ReasonCode.BOTH_BUSY, {"onsite_use": _percent(onsite_use or 0)}))
    elif selling_out:
        points = 2 * STEP if onsite_idle else STEP
        if onsite_idle:
            reasons.append(
                Reason(ReasonCode.ONSITE_IDLE, {"onsite_use": _percent(onsite_use or 0)})
            )
    elif onsite_busy:
        points = -STEP
        reasons.append(Reason(ReasonCode.ONSITE_BUSY, {"onsite_use": _percent(onsite_use or 0)}))
    if many_no_shows and not selling_out:
        # Walk-ins fill the chairs booked patients leave empty; booked places do not.
        points -= STEP
        reasons.append(Reason(ReasonCode.MANY_NO_SHOWS, {"rate": _percent(no_show_rate or 0)}))

    ratios = dict(current)
    if points:
        if APPOINTMENT not in current or ONSITE not in current:
            reasons.append(Reason(ReasonCode.CUSTOM_POOLS))
        else:
            ratios, cut = _shift(current, points)
            if cut:
                reasons.append(
                    Reason(
                        ReasonCode.AT_LIMIT,
                        {"onsite": MIN_ONSITE, "appointment": MIN_APPOINTMENT},
                    )
                )
    if change == 0 and ratios == dict(current) and not reasons:
        reasons.append(Reason(ReasonCode.BALANCED, {"use": _percent(use)}))
    return Advice(change, dict(current), ratios, tuple(reasons))
