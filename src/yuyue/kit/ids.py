"""Time-ordered UUIDs (version 7) so new rows land at the end of primary-key indexes."""

from __future__ import annotations

import os
import threading
import time
import uuid

_BATCH = 4096


class _Bits(threading.local):
    # Per thread: two threads taking from one buffer could be handed the same bits.
    buffer: bytearray

    def __init__(self) -> None:
        self.buffer = bytearray()


_bits = _Bits()


def _forget_random() -> None:
    # A forked process must not hand out its parent's next random bits.
    global _bits
    _bits = _Bits()


os.register_at_fork(after_in_child=_forget_random)


def _random_80_bits() -> int:
    # One getrandom call per few hundred ids instead of one per id: a booking makes about
    # seven ids, and the system call was a measurable part of its CPU.
    buffer = _bits.buffer
    if len(buffer) < 10:
        buffer[:] = os.urandom(_BATCH)
    value = int.from_bytes(buffer[-10:], "big")
    del buffer[-10:]
    return value


def new_id() -> uuid.UUID:
    millis = time.time_ns() // 1_000_000
    value = (millis & ((1 << 48) - 1)) << 80
    value |= _random_80_bits()
    value &= ~(0xF << 76)
    value |= 0x7 << 76  # version 7
    value &= ~(0x3 << 62)
    value |= 0x2 << 62  # RFC 4122 variant
    return uuid.UUID(int=value)
