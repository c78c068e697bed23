"""Where the machine's CPU went during a run: the server (its process and every process
under it, e.g. the workers of `yuyue serve --workers N`), this load generator, PostgreSQL,
and everything else (other users of the machine), from /proc, in cores (1.0 = one core).

Run as a script, it measures another system's benchmark the same way::

    python bench/cpu.py --server gunicorn -- python their_bench.py --threads 32

runs the command and prints, for the time it ran, the CPU seconds and cores used by the
processes named `--server` (with the processes under them), PostgreSQL, the command (with
its children: the load generator) and everything else. Divided by the requests the
command reports, that is the CPU per request of each, as `run.py` reports it for yuyue.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _process_ticks() -> dict[int, tuple[str, int, int]]:
    """(command name, user + system ticks, parent pid) of every process we may read."""
    found: dict[int, tuple[str, int, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        head, _, rest = raw.rpartition(")")
        fields = rest.split()
        found[int(entry.name)] = (
            head.partition("(")[2],
            int(fields[11]) + int(fields[12]),
            int(fields[1]),
        )
    return found


def process_tree(processes: dict[int, tuple[str, int, int]], root: int) -> set[int]:
    """`root` and every process below it."""
    children: dict[int, list[int]] = {}
    for pid, (_, _, parent) in processes.items():
        children.setdefault(parent, []).append(pid)
    found: set[int] = set()
    stack = [root]
    while stack:
        pid = stack.pop()
        if pid not in found:
            found.add(pid)
            stack.extend(children.get(pid, ()))
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
    processes: dict[int, tuple[str, int, int]]

    @classmethod
    def take(cls) -> CpuSnapshot:
        return cls(time.monotonic(), _machine_ticks(), _process_ticks())


def usage(start: CpuSnapshot, end: CpuSnapshot, *, server_pid: int | None) -> dict[str, float]:
    """CPU used between two snapshots, in cores, by category; the server counts its whole
    process tree (a worker started or ended in between counts with what it used while
    both snapshots saw it, or from zero when only the last one did)."""
    seconds = max(end.at - start.at, 1e-9)
    ncpu = os.cpu_count() or 1
    busy = end.machine[0] - start.machine[0]
    total = end.machine[1] - start.machine[1]
    machine_cores = ncpu * busy / total if total else 0.0

    def used(pid: int) -> float:
        if pid not in end.processes:
            return 0.0
        before = start.processes.get(pid, (end.processes[pid][0], 0, 0))[1]
        return (end.processes[pid][1] - before) / _TICKS / seconds

    me = os.getpid()
    server = (
        sum(used(pid) for pid in process_tree(end.processes, server_pid)) if server_pid else 0.0
    )
    client = used(me)
    postgres = sum(used(pid) for pid, (name, _, _) in end.processes.items() if name == "postgres")
    return {
        "machine": round(machine_cores, 2),
        "server": round(server, 2),
        "load_generator": round(client, 2),
        "postgres": round(postgres, 2),
        "other": round(max(machine_cores - server - client - postgres, 0.0), 2),
    }


async def foreign_load(seconds: float = 1.0, *, ignore: tuple[int, ...] = ()) -> float:
    """Cores used over `seconds` by processes other than this one and `ignore` (with
    the processes under them)."""
    start = CpuSnapshot.take()
    await asyncio.sleep(seconds)
    end = CpuSnapshot.take()
    u = usage(start, end, server_pid=None)
    mine = set().union(*(process_tree(end.processes, p) for p in ignore)) if ignore else set()
    ours = sum(
        (end.processes[p][1] - start.processes.get(p, ("", 0, 0))[1]) / _TICKS / seconds
        for p in mine
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


def _command_usage(server_names: list[str], command: list[str]) -> dict[str, float]:
    start = CpuSnapshot.take()
    child = subprocess.Popen(command)
    child.wait()
    end = CpuSnapshot.take()
    seconds = max(end.at - start.at, 1e-9)

    def spent(pids: set[int]) -> float:
        total = 0
        for pid in pids:
            if pid in end.processes:
                total += end.processes[pid][1] - start.processes.get(pid, ("", 0, 0))[1]
        return total / _TICKS

    servers: set[int] = set()
    for pid, (name, _, _) in end.processes.items():
        if name in server_names:
            servers |= process_tree(end.processes, pid)
    postgres = {pid for pid, (name, _, _) in end.processes.items() if name == "postgres"}
    # The command's own CPU, children included, once reaped: from the kernel's accounting.
    load = os.times()
    machine = usage(start, end, server_pid=None)["machine"] * seconds
    found = {
        "wall_s": seconds,
        "server_cpu_s": spent(servers),
        "postgres_cpu_s": spent(postgres - servers),
        "command_cpu_s": load.children_user + load.children_system,
    }
    found["other_cpu_s"] = max(
        machine - found["server_cpu_s"] - found["postgres_cpu_s"] - found["command_cpu_s"], 0.0
    )
    found["exit_code"] = float(child.returncode)
    return {k: round(v, 2) for k, v in found.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description="CPU used while a command runs, by process.")
    parser.add_argument(
        "--server",
        action="append",
        default=[],
        help="process name of the server under test (repeatable), e.g. gunicorn or trytond",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- command and arguments")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command or not args.server:
        parser.error("give --server NAME and a command after --")
    found = _command_usage(args.server, command)
    cores = {
        k.replace("_cpu_s", "_cores"): round(v / found["wall_s"], 2)
        for k, v in found.items()
        if k.endswith("_cpu_s")
    }
    print(json.dumps({**found, **cores}), file=sys.stderr)
    return int(found["exit_code"])


if __name__ == "__main__":
    sys.exit(main())
