"""Cluster throughput history: heartbeat counter deltas summed into 10 s buckets for the last hour."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from namenode.throughput import BUCKET_S, HISTORY_S, ThroughputHistory


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


START = 1_700_000_000.0  # a bucket boundary


def make() -> tuple[ThroughputHistory, FakeClock]:
    clock = FakeClock(START)
    return ThroughputHistory(clock), clock


def test_first_heartbeat_is_only_a_baseline() -> None:
    history, clock = make()
    history.record("dn1", 10_000, 5_000)
    clock.now += 1
    assert history.bytes_written_total == 0 and history.bytes_read_total == 0
    assert history.history() == [(int(START), 0.0, 0.0)]


def test_deltas_are_summed_per_bucket_and_node() -> None:
    history, clock = make()
    history.record("dn1", 100, 0)
    history.record("dn2", 1_000, 0)
    clock.now += 3
    history.record("dn1", 600, 50)  # +500 written, +50 read
    history.record("dn2", 1_500, 0)  # +500 written
    clock.now += 10  # next bucket
    history.record("dn1", 2_600, 50)  # +2000
    assert history.bytes_written_total == 3_000 and history.bytes_read_total == 50
    rows = history.history()
    assert rows[0] == (int(START), 1_000 / BUCKET_S, 50 / BUCKET_S)
    # The current bucket's rate is over the seconds elapsed in it (here 3 s).
    assert rows[1] == (int(START) + BUCKET_S, 2_000 / 3, 0.0)


def test_a_smaller_counter_means_the_datanode_restarted() -> None:
    history, _clock = make()
    history.record("dn1", 5_000, 9_000)
    history.record("dn1", 7_000, 9_000)  # +2000
    history.record("dn1", 300, 40)  # restarted: its new values are all new bytes
    assert history.bytes_written_total == 2_300
    assert history.bytes_read_total == 40


def test_buckets_without_traffic_are_zero_and_the_last_hour_is_kept() -> None:
    history, clock = make()
    history.record("dn1", 0, 0)
    history.record("dn1", 100, 0)
    clock.now += 35  # three buckets later
    rows = history.history()
    assert [start for start, _, _ in rows] == [int(START) + i * BUCKET_S for i in range(4)]
    assert [w for _, w, _ in rows] == [10.0, 0.0, 0.0, 0.0]
    clock.now += 2 * HISTORY_S
    rows = history.history()
    assert len(rows) == HISTORY_S // BUCKET_S
    assert all(w == 0.0 and r == 0.0 for _, w, r in rows)
    assert history.bytes_written_total == 100  # totals outlive the history


def test_recent_rates_average_over_the_last_minute() -> None:
    history, clock = make()
    clock.now += 600
    history.record("dn1", 0, 0)
    history.record("dn1", 60_000, 6_000)
    clock.now += 59.5  # the delta's bucket is still in the window
    written, read = history.recent_rates(60)
    assert written > 0 and read > 0
    assert written * 60 >= 60_000 * 0.9
    clock.now += 60
    assert history.recent_rates(60) == (0.0, 0.0)


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 10**12), st.floats(0, 30))))
def test_history_is_bounded_and_totals_match_the_buckets(beats: list[tuple[str, int, float]]) -> None:
    history, clock = make()
    for node, value, step in beats:
        clock.now += step
        history.record(node, value, value // 2)
    rows = history.history()
    assert len(rows) <= HISTORY_S // BUCKET_S
    assert all(w >= 0 and r >= 0 for _, w, r in rows)
    if clock.now - START < HISTORY_S - BUCKET_S:  # nothing has aged out: every booked byte is in a bucket
        booked = sum(w * BUCKET_S for _, w, _ in rows[:-1])
        elapsed = max(1.0, min(clock.now - rows[-1][0], BUCKET_S))
        booked += rows[-1][1] * elapsed
        assert abs(booked - history.bytes_written_total) <= 1e-6 * max(1, history.bytes_written_total)
