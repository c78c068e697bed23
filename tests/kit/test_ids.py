"""New ids: version 7, time-ordered, and never the same twice, across threads and forks."""

from __future__ import annotations

import os
import threading
import time
import uuid

from yuyue.kit.ids import new_id


def test_an_id_is_a_version_7_uuid_ordered_by_time() -> None:
    first = new_id()
    time.sleep(0.002)
    second = new_id()
    assert first.version == 7 and first.variant == uuid.RFC_4122
    assert first < second


def test_threads_never_share_random_bits() -> None:
    made: list[list[uuid.UUID]] = [[] for _ in range(8)]

    def make(into: list[uuid.UUID]) -> None:
        into.extend(new_id() for _ in range(20_000))

    threads = [threading.Thread(target=make, args=(m,)) for m in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [i for m in made for i in m]
    assert len(set(everything)) == len(everything)


def test_a_forked_process_does_not_repeat_its_parents_next_ids() -> None:
    new_id()  # the buffer holds random bits the child must not reuse
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's exit code carries its result
        os.close(reading)
        os.write(writing, b"".join(new_id().bytes for _ in range(50)))
        os._exit(0)
    os.close(writing)
    data = b""
    while chunk := os.read(reading, 4096):
        data += chunk
    os.close(reading)
    os.waitpid(child, 0)
    theirs = {data[i : i + 16][6:] for i in range(0, len(data), 16)}
    ours = {new_id().bytes[6:] for _ in range(50)}
    assert len(theirs) == 50 and not theirs & ours


def test_a_primary_and_its_standbys_reach_asyncpg_as_one_address_list() -> None:
    from sqlalchemy.engine import make_url

    from yuyue.kit.db import asyncpg_dsn

    both = make_url(
        "postgresql+asyncpg://yuyue:p%40ss@/yuyue?host=db1:5432&host=db2:5433"
        "&target_session_attrs=read-write"
    )
    assert asyncpg_dsn(both) == (
        "postgresql://yuyue:p%40ss@db1:5432,db2:5433/yuyue?target_session_attrs=read-write"
    )
    one = make_url("postgresql+asyncpg://yuyue@127.0.0.1:5432/test")
    assert asyncpg_dsn(one) == "postgresql://yuyue@127.0.0.1:5432/test"
