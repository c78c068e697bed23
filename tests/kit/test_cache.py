"""The small in-process TTL cache, driven by a hand-moved monotonic clock."""

from __future__ import annotations

from yuyue.kit.cache import TtlCache


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TestTtlCache:
    def test_entry_is_kept_until_its_time_runs_out(self) -> None:
        ticks = Ticks()
        cache: TtlCache[str, int] = TtlCache(5.0, monotonic=ticks)
        cache.put("a", 1)

        ticks.now += 4.9
        assert cache.get("a") == 1
        ticks.now += 0.1
        assert cache.get("a") is None

    def test_zero_ttl_keeps_nothing(self) -> None:
        cache: TtlCache[str, int] = TtlCache(0.0)
        cache.put("a", 1)

        assert cache.get("a") is None

    def test_full_cache_starts_over_instead_of_growing(self) -> None:
        cache: TtlCache[int, int] = TtlCache(60.0, limit=3)
        for key in range(3):
            cache.put(key, key)

        cache.put(3, 3)

        assert [cache.get(key) for key in range(4)] == [None, None, None, 3]

    def test_forget_and_clear(self) -> None:
        cache: TtlCache[str, int] = TtlCache(60.0)
        cache.put("a", 1)
        cache.put("b", 2)

        cache.forget("a")
        assert (cache.get("a"), cache.get("b")) == (None, 2)
        cache.clear()
        assert cache.get("b") is None
