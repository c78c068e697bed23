"""Throwaway PostgreSQL servers for the operations tests, made with Debian's binaries
(`initdb`, `pg_ctl`, `pg_basebackup`) in a temporary folder, on a free port. PostgreSQL
refuses to run as root, so as root the servers run as the `postgres` user."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

BIN = Path("/usr/lib/postgresql/15/bin")


def binaries_or_skip() -> None:
    if not (BIN / "initdb").exists():
        if os.environ.get("CI") == "true":
            raise RuntimeError("CI=true but PostgreSQL's server binaries are not installed")
        pytest.skip("PostgreSQL's server binaries are not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(command: Sequence[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return list(command)


def run(*command: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _as_postgres([str(c) for c in command]),
        capture_output=True,
        text=True,
        check=check,
        timeout=120,
    )


def give_to_postgres(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")
        os.chmod(path, 0o700)


class Server:
    def __init__(self, data: Path, port: int) -> None:
        self.data = data
        self.port = port

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def configure(self, **settings: str) -> None:
        lines = [f"{name} = '{value}'" for name, value in settings.items()]
        with open(self.data / "postgresql.auto.conf", "a") as conf:
            conf.write("\n".join(lines) + "\n")

    def start(self) -> None:
        log = self.data.parent / f"{self.data.name}.log"
        result = run(
            BIN / "pg_ctl", "-D", self.data, "-l", log, "-w", "-t", "60", "start", check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"server did not start: {result.stderr}\n{_tail(log)}")

    def stop(self, mode: str = "fast") -> None:
        run(BIN / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop", check=False)

    def sql(self, query: str) -> str:
        return run(
            "psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-Atc", query
        ).stdout.strip()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = run(BIN / "pg_isready", "-h", "127.0.0.1", "-p", str(self.port), check=False)
            if ready.returncode == 0 and self.sql("SELECT pg_is_in_recovery()") == "f":
                return
            time.sleep(0.2)
        raise RuntimeError("server did not become ready")


def _tail(path: Path) -> str:
    with contextlib.suppress(OSError):
        return path.read_text()[-2000:]
    return ""


def new_primary(root: Path, *, archive: Path | None = None) -> Server:
    give_to_postgres(root)
    data = root / "primary"
    run(
        BIN / "initdb",
        "-D",
        data,
        "-U",
        "postgres",
        "--auth=trust",
        "-E",
        "UTF8",
        "--locale=C.UTF-8",
    )
    server = Server(data, free_port())
    server.configure(
        port=str(server.port),
        listen_addresses="127.0.0.1",
        unix_socket_directories=str(root),
        wal_level="replica",
        max_wal_senders="5",
        fsync="on",
    )
    if archive is not None:
        give_to_postgres(archive)
        server.configure(
            archive_mode="on",
            archive_command=f"test ! -f {archive}/%f && cp %p {archive}/%f",
        )
    return server


@contextlib.contextmanager
def running(*servers: Server) -> Iterator[None]:
    try:
        yield
    finally:
        for server in servers:
            server.stop("immediate")
