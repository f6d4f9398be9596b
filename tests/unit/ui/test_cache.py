"""The bounded LRU cache behind the leaderboard service."""

from ui.cache import BoundedCache


def test_least_recently_used_entries_leave_first_by_count_and_by_bytes():
    cache = BoundedCache(max_entries=3, max_bytes=100)
    for key in "abc":
        cache.put(key, key.upper(), 10)
    assert cache.get("a") == "A"  # a is now the most recent
    cache.put("d", "D", 10)
    assert cache.get("b") is None and [cache.get(k) for k in "acd"] == ["A", "C", "D"] and len(cache) == 3
    cache.put("e", "E", 85)  # 30 + 85 > 100: the oldest go until it fits
    assert cache.bytes <= 100 and cache.get("e") == "E" and cache.get("a") is None and cache.get("c") is None


def test_an_entry_too_big_alone_is_not_kept_and_replacing_a_key_recounts_it():
    cache = BoundedCache(max_entries=10, max_bytes=100)
    cache.put("big", "x", 101)
    assert cache.get("big") is None and cache.bytes == 0
    cache.put("k", 1, 40)
    cache.put("k", 2, 50)
    assert cache.get("k") == 2 and cache.bytes == 50 and len(cache) == 1
    cache.pop("k")
    assert cache.bytes == 0 and cache.get("k") is None
