"""What counting a booking attempt adds to the booking POST (booking/demand.py).

Times `DemandCounter.count` — one dict increment keyed by hospital, session, channel,
quarter-hour and outcome, with the clock read that goes with it — against the sold-out
answer it is added to on the fast path (`fastpath.SoldOutFastPath._answer`'s memory
look-up and the pre-rendered body), in a tight loop, and prints nanoseconds per call
(best of the repeats). A release peak spreads its attempts over a few hundred sessions, so
the keys here do too.

    PYTHONPATH=src .venv/bin/python bench/demand.py
"""

from __future__ import annotations

import argparse
import timeit
import uuid

from yuyue.booking.demand import SOLD_OUT, DemandCounter
from yuyue.kit.clock import SystemClock
from yuyue.scheduling.enums import Channel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=300)
    args = parser.parse_args()
    clock = SystemClock()
    counter = DemandCounter()
    hospital = uuid.uuid4()
    sessions = [uuid.uuid4() for _ in range(args.sessions)]
    channels = list(Channel)
    state = {"i": 0}

    def count() -> None:
        i = state["i"] = state["i"] + 1
        counter.count(hospital, sessions[i % len(sessions)], channels[i % 7], SOLD_OUT, clock.now())

    def baseline() -> None:
        i = state["i"] = state["i"] + 1
        _ = (sessions[i % len(sessions)], channels[i % 7])

    def per_call(work: object) -> float:
        best = min(timeit.repeat(work, number=args.number, repeat=args.repeat))  # type: ignore[arg-type]
        return best / args.number * 1e9

    empty = per_call(baseline)
    counted = per_call(count)
    print(f"loop and arguments alone      {empty:7.0f} ns")
    print(f"count one attempt (with loop) {counted:7.0f} ns")
    print(f"added by counting             {counted - empty:7.0f} ns per attempt")
    print(f"distinct keys counted         {len(counter.pending()):7d}")


if __name__ == "__main__":
    main()
