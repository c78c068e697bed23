"""Where the machine's CPU went during a run: the server, this load generator, PostgreSQL,
and everything else (other users of the machine), from /proc, in cores (1.0 = one core)."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _process_ticks() -> dict[int, tuple[str, int]]:
    """(command name, user + system ticks) of every process we may read."""
    found: dict[int, tuple[str, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        head, _, rest = raw.rpartition(")")
        fields = rest.split()
        found[int(entry.name)] = (head.partition("(")[2], int(fields[11]) + int(fields[12]))
    return found


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) ticks of all CPUs together."""
    with open("/proc/stat", encoding="ascii") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@dataclass(frozen=True)
class CpuSnapshot:
    at: float
    machine: tuple[int, int]
    processes: dict[int, tuple[str, int]]

    @classmethod
    def take(cls) -> CpuSnapshot:
        return cls(time.monotonic(), _machine_ticks(), _process_ticks())


def usage(start: CpuSnapshot, end: CpuSnapshot, *, server_pid: int | None) -> dict[str, float]:
    """CPU used between two snapshots, in cores, by category."""
    seconds = max(end.at - start.at, 1e-9)
    ncpu = os.cpu_count() or 1
    busy = end.machine[0] - start.machine[0]
    total = end.machine[1] - start.machine[1]
    machine_cores = ncpu * busy / total if total else 0.0

    def used(pid: int) -> float:
        if pid not in end.processes:
            return 0.0
        before = start.processes.get(pid, (end.processes[pid][0], 0))[1]
        return (end.processes[pid][1] - before) / _TICKS / seconds

    me = os.getpid()
    server = used(server_pid) if server_pid else 0.0
    client = used(me)
    postgres = sum(used(pid) for pid, (name, _) in end.processes.items() if name == "postgres")
    return {
        "machine": round(machine_cores, 2),
        "server": round(server, 2),
        "load_generator": round(client, 2),
        "postgres": round(postgres, 2),
        "other": round(max(machine_cores - server - client - postgres, 0.0), 2),
    }


async def foreign_load(seconds: float = 1.0, *, ignore: tuple[int, ...] = ()) -> float:
    """Cores used over `seconds` by processes other than this one and `ignore`."""
    start = CpuSnapshot.take()
    await asyncio.sleep(seconds)
    end = CpuSnapshot.take()
    u = usage(start, end, server_pid=None)
    ours = sum(
        (end.processes[p][1] - start.processes.get(p, ("", 0))[1]) / _TICKS / seconds
        for p in ignore
        if p in end.processes
    )
    return max(u["machine"] - u["load_generator"] - ours, 0.0)


async def wait_for_quiet(
    limit_cores: float, timeout_s: float, *, ignore: tuple[int, ...] = ()
) -> tuple[float, float]:
    """Waits (up to `timeout_s`) until other processes use at most `limit_cores`;
    returns (seconds waited, the last load seen)."""
    started = time.monotonic()
    load = await foreign_load(ignore=ignore)
    while load > limit_cores and time.monotonic() - started < timeout_s:
        await asyncio.sleep(1.0)
        load = await foreign_load(ignore=ignore)
    return time.monotonic() - started, load
