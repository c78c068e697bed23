"""What counting a booking attempt adds to the booking POST (booking/demand.py).

Times `DemandCounter.count` as the booking path calls it — the clock read (`time.time`) and
one dict increment keyed by hospital, session, channel, quarter-hour and outcome — in a
tight loop, less the loop itself, and prints nanoseconds per attempt (best of the repeats).
A release peak spreads its attempts over a few hundred sessions, so the keys here do too.

    PYTHONPATH=src .venv/bin/python bench/demand.py
"""

from __future__ import annotations

import argparse
import timeit
import uuid
from collections.abc import Callable

from yuyue.booking.demand import SOLD_OUT, DemandCounter
from yuyue.kit.clock import SystemClock, epoch_seconds
from yuyue.scheduling.enums import Channel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--sessions", type=int, default=300)
    args = parser.parse_args()
    counter = DemandCounter(epoch_seconds(SystemClock()))
    hospital = uuid.uuid4()
    sessions = [uuid.uuid4() for _ in range(args.sessions)]
    channels = list(Channel)
    state = {"i": 0}

    def count() -> None:
        i = state["i"] = state["i"] + 1
        counter.count(hospital, sessions[i % len(sessions)], channels[i % 7], SOLD_OUT)

    def baseline() -> None:
        i = state["i"] = state["i"] + 1
        _ = (hospital, sessions[i % len(sessions)], channels[i % 7], SOLD_OUT)

    def per_call(work: Callable[[], None]) -> float:
        best = min(timeit.repeat(work, number=args.number, repeat=args.repeat))
        return best / args.number * 1e9

    empty = per_call(baseline)
    counted = per_call(count)
    print(f"loop and arguments alone      {empty:7.0f} ns")
    print(f"count one attempt (with loop) {counted:7.0f} ns")
    print(f"added by counting             {counted - empty:7.0f} ns per attempt")
    print(f"distinct keys counted         {len(counter.pending()):7d}")


if __name__ == "__main__":
    main()
