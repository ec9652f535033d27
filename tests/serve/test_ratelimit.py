"""Per-key token buckets (serve/ratelimit.py), on an injected clock."""

import math
import sys
import threading
import time

import pytest

from conftest import Clock
from shipml.serve.ratelimit import RateLimiter


@pytest.fixture()
def clock() -> Clock:
    return Clock(500.0)


def test_burst_then_refused_with_a_sane_retry_time(clock):
    limiter = RateLimiter(2.0, 3, clock=clock)
    assert [limiter.check("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.check("k")
    assert wait == pytest.approx(0.5)  # one token every 0.5 s
    assert math.ceil(wait) == 1  # Retry-After: 1
    assert limiter.check("k") == pytest.approx(0.5)  # a refused request takes no token
    clock.now += 0.2
    assert limiter.check("k") == pytest.approx(0.3)
    clock.now += 0.3
    assert limiter.check("k") == 0.0
    assert limiter.check("k") == pytest.approx(0.5)


def test_slow_rates_give_long_retry_times(clock):
    limiter = RateLimiter(0.1, 1, clock=clock)  # 6 a minute
    assert limiter.check("k") == 0.0
    assert limiter.check("k") == pytest.approx(10.0)
    clock.now += 4
    assert math.ceil(limiter.check("k")) == 6


def test_refill_is_capped_at_the_burst(clock):
    limiter = RateLimiter(10.0, 5, clock=clock)
    for _ in range(5):
        assert limiter.check("k") == 0.0
    clock.now += 0.25  # 2.5 tokens
    assert [limiter.check("k") == 0.0 for _ in range(3)] == [True, True, False]
    clock.now += 3600
    results = [limiter.check("k") for _ in range(7)]
    assert results[:5] == [0.0] * 5 and all(w > 0 for w in results[5:])


def test_keys_are_independent(clock):
    limiter = RateLimiter(1.0, 2, clock=clock)
    assert [limiter.check("a") for _ in range(3)][-1] > 0
    assert [limiter.check("b") for _ in range(2)] == [0.0, 0.0]
    assert limiter.check("b") > 0
    limiter.reset("a")
    assert limiter.check("a") == 0.0 and limiter.check("b") > 0


def test_idle_buckets_are_evicted_without_changing_answers(clock):
    limiter = RateLimiter(1.0, 4, clock=clock)  # a bucket is full again after 4 s
    for i in range(1000):
        limiter.check(f"client-{i}")
    assert len(limiter) == 1000
    for _ in range(3):
        limiter.check("busy")
    clock.now += 3.9  # not yet full: nothing may be dropped
    limiter.check("other")
    assert len(limiter) == 1002
    clock.now += 0.2  # the 1000 clients are full again, and dropped
    # "busy" (1 token + 4.1 s of refill) is full too: dropped and recreated full, as it would be
    assert [limiter.check("busy") for _ in range(5)] == [0.0] * 4 + [pytest.approx(1.0)]
    assert list(limiter._buckets) == ["other", "busy"]
    clock.now += 10
    limiter.check("new")
    assert list(limiter._buckets) == ["new"]


def test_memory_is_capped_by_max_keys(clock):
    limiter = RateLimiter(1.0, 1, max_keys=10, clock=clock)
    for i in range(100):
        assert limiter.check(f"k{i}") == 0.0
    assert len(limiter) == 10
    assert list(limiter._buckets) == [f"k{i}" for i in range(90, 100)]  # most recent kept
    assert limiter.check("k99") > 0


def test_thread_safety_exact_token_count(clock):
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible to provoke races
    limiter = RateLimiter(1e-9, 5000, clock=clock)  # the clock is frozen: no refill
    allowed = []

    def work(key):
        mine = sum(limiter.check(key) == 0.0 for _ in range(2000))
        allowed.append((key, mine))

    threads = [threading.Thread(target=work, args=("shared",)) for _ in range(6)]
    threads += [threading.Thread(target=work, args=(f"own-{i}",)) for i in range(2)]
    try:
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    finally:
        sys.setswitchinterval(interval)
    assert sum(n for key, n in allowed if key == "shared") == 5000  # 6 * 2000 tried
    assert sorted(n for key, n in allowed if key != "shared") == [2000, 2000]


def test_real_clock_refills():
    limiter = RateLimiter(50.0, 1)
    assert limiter.check("k") == 0.0
    wait = limiter.check("k")
    assert 0 < wait <= 0.02 + 1e-9
    time.sleep(wait + 0.01)
    assert limiter.check("k") == 0.0


@pytest.mark.parametrize(
    "rate, burst", [(0, 1), (-1, 1), (float("nan"), 1), (float("inf"), 1), (1, 0), (1, 1.5)]
)
def test_bad_settings_are_refused(rate, burst):
    with pytest.raises(ValueError):
        RateLimiter(rate, burst)
