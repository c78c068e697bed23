"""A Redis database of the tests' own for the shared state (several processes' caches).

It is YUYUE_TEST_REDIS_SHARED_URL (default: database 12 of the local server), flushed by
every test that uses it, since the servers under test use yuyue's fixed key prefix. Without
a reachable server those tests are skipped, except under CI=true, where they must run.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import os
import socket
from collections.abc import Awaitable, Callable

import pytest
from redis import asyncio as aioredis
from redis.exceptions import RedisError

from tests.conftest import IN_CI

SHARED_REDIS_URL = os.environ.get("YUYUE_TEST_REDIS_SHARED_URL", "redis://127.0.0.1:6379/12")


async def flushed_redis() -> str:
    """The URL of the tests' Redis database, emptied; skips when there is none."""
    client = aioredis.Redis.from_url(SHARED_REDIS_URL)
    try:
        await asyncio.wait_for(client.flushdb(), 2)
    except (RedisError, OSError, TimeoutError) as error:
        if IN_CI:
            raise RuntimeError(f"CI=true but Redis is not reachable: {error}") from error
        pytest.skip(f"Redis not reachable at {SHARED_REDIS_URL} ({error})")
    finally:
        await client.aclose()
    return SHARED_REDIS_URL


def closed_port_url() -> str:
    """A Redis URL on a local port where nothing listens (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


async def eventually(check: Callable[[], bool | Awaitable[bool]], *, within: float = 2.0) -> None:
    """Waits until `check()` holds (a message crossing Redis), failing after `within`."""
    deadline = asyncio.get_running_loop().time() + within
    for _ in itertools.count():
        outcome = check()
        if await outcome if inspect.isawaitable(outcome) else outcome:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"still not so after {within} s")
        await asyncio.sleep(0.005)
