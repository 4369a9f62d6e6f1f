"""The replication token bucket, against a fake clock."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from namenode.throttle import TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_unlimited_bucket_always_allows() -> None:
    bucket = TokenBucket(0)
    assert all(bucket.try_take(10**12) for _ in range(100))


def test_burst_then_refill() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1000, 1.0, clock)
    assert bucket.try_take(600)
    assert bucket.try_take(600)  # takes the bucket into debt (-200)
    assert not bucket.try_take(1)
    clock.now = 0.1  # +100 tokens: still in debt
    assert not bucket.try_take(1)
    clock.now = 0.25  # debt repaid (-200 + 250 = 50)
    assert bucket.try_take(1000)


@given(
    rate=st.integers(1_000, 10_000_000),
    sizes=st.lists(st.integers(1, 50_000_000), min_size=1, max_size=200),
    step=st.floats(0.001, 2.0),
)
def test_bytes_handed_out_stay_within_rate_times_time_plus_one_burst_and_one_item(
    rate: int, sizes: list[int], step: float
) -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate, 1.0, clock)
    handed = 0
    for size in sizes:
        while not bucket.try_take(size):
            clock.now += step
        handed += size
        # Anything handed out was covered by tokens earned so far, plus the burst, plus the one
        # item that may borrow.
        assert handed <= rate * clock.now + bucket.burst + size


def test_recent_rate_counts_what_was_handed_out_in_the_last_window() -> None:
    clock = FakeClock()
    bucket = TokenBucket(0, 1.0, clock)  # unlimited: handouts are still counted
    assert bucket.recent_rate() == 0
    bucket.try_take(30_000_000)
    clock.now = 30.0
    bucket.try_take(30_000_000)
    assert bucket.recent_rate() == 60_000_000 / 60
    clock.now = 61.0  # the first handout left the window
    assert bucket.recent_rate() == 30_000_000 / 60
    refused = TokenBucket(1000, 1.0, clock)
    refused.try_take(5000)
    assert not refused.try_take(1)  # a refused take is not traffic
    assert refused.recent_rate() == 5000 / 60
