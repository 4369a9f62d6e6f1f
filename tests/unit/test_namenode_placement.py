"""Replica placement: target choice, excess trimming and copy-source choice."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from namenode import placement
from namenode.placement import RESERVED_BYTES, USAGE_BUCKETS, NodeLoad

GIB = 1024**3
BLOCK = 128 * 1024**2
ROOM = BLOCK + RESERVED_BYTES  # the least free space a target may have

#: (nodes, count, excluded ids, rng seed) for one choose_targets call.
PlacementCase = tuple[list[NodeLoad], int, set[str], int]


def node(
    node_id: str,
    *,
    remaining: int = 500 * GIB,
    capacity: int = 1000 * GIB,
    transfers: int = 0,
    usable: bool = True,
) -> NodeLoad:
    return NodeLoad(
        id=node_id,
        url=f"http://{node_id}:9866",
        rack="/default-rack",
        remaining=remaining,
        capacity=capacity,
        active_transfers=transfers,
        usable=usable,
    )


def ids(nodes: list[NodeLoad]) -> list[str]:
    return [n.id for n in nodes]


def load_key(n: NodeLoad) -> tuple[int, int]:
    """The documented preference: fewer transfers first, then the emptier usage bucket."""
    return (n.active_transfers, int(n.used_fraction * USAGE_BUCKETS))


def fits(n: NodeLoad, block_size: int, exclude: set[str]) -> bool:
    return n.usable and n.id not in exclude and n.remaining >= block_size + RESERVED_BYTES


# --- strategies -------------------------------------------------------------------------------


@st.composite
def node_loads(draw: st.DrawFn, node_id: str) -> NodeLoad:
    """Mostly eligible nodes, with free space often right at the threshold."""
    capacity = draw(st.sampled_from([0, GIB, 100 * GIB, 4000 * GIB]))
    at_threshold = st.sampled_from([0, ROOM - 1, ROOM, ROOM + 1])
    remaining = draw(at_threshold | st.integers(ROOM, max(capacity, ROOM)))
    return node(
        node_id,
        remaining=remaining,
        capacity=capacity,
        transfers=draw(st.integers(0, 4)),
        usable=draw(st.integers(0, 4)) > 0,  # 80% usable
    )


@st.composite
def clusters(draw: st.DrawFn, max_nodes: int = 12) -> list[NodeLoad]:
    count = draw(st.integers(0, max_nodes))
    return [draw(node_loads(f"dn{i}")) for i in range(count)]


@st.composite
def placement_cases(draw: st.DrawFn) -> PlacementCase:
    nodes = draw(clusters())
    count = draw(st.integers(0, 6))
    exclude = set(draw(st.lists(st.sampled_from([*ids(nodes), "dn-gone"]), max_size=4))) if nodes else set()
    seed = draw(st.integers(0, 2**32))
    return nodes, count, exclude, seed


# --- NodeLoad ---------------------------------------------------------------------------------


def test_used_fraction() -> None:
    assert node("a", remaining=250, capacity=1000).used_fraction == pytest.approx(0.75)
    assert node("a", remaining=1000, capacity=1000).used_fraction == 0.0
    assert node("a", remaining=0, capacity=1000).used_fraction == 1.0


@pytest.mark.parametrize("capacity", [0, -1])
def test_unknown_capacity_counts_as_full(capacity: int) -> None:
    assert node("a", remaining=10 * GIB, capacity=capacity).used_fraction == 1.0


# --- choose_targets: invariants ---------------------------------------------------------------


@given(placement_cases())
def test_targets_are_distinct_eligible_and_at_most_count(case: PlacementCase) -> None:
    nodes, count, exclude, seed = case
    targets = placement.choose_targets(nodes, count, block_size=BLOCK, exclude=exclude, rng=random.Random(seed))

    assert len(set(ids(targets))) == len(targets), "targets must be distinct"
    assert all(fits(t, BLOCK, exclude) for t in targets)
    eligible = [n for n in nodes if fits(n, BLOCK, exclude)]
    assert len(targets) == min(count, len(eligible)), "must use every eligible node it needs"
    assert all(t in nodes for t in targets)


@given(placement_cases())
def test_targets_are_the_least_loaded(case: PlacementCase) -> None:
    nodes, count, exclude, seed = case
    targets = placement.choose_targets(nodes, count, block_size=BLOCK, exclude=exclude, rng=random.Random(seed))

    keys = [load_key(t) for t in targets]
    assert keys == sorted(keys), "least loaded first"
    left_out = [n for n in nodes if fits(n, BLOCK, exclude) and n not in targets]
    if targets:
        assert all(load_key(n) >= keys[-1] for n in left_out), "a less loaded node was passed over"


@given(placement_cases())
def test_same_seed_same_targets(case: PlacementCase) -> None:
    nodes, count, exclude, seed = case
    first = placement.choose_targets(nodes, count, block_size=BLOCK, exclude=exclude, rng=random.Random(seed))
    again = placement.choose_targets(nodes, count, block_size=BLOCK, exclude=exclude, rng=random.Random(seed))
    assert ids(first) == ids(again)


@given(placement_cases())
def test_choose_targets_does_not_reorder_its_input(case: PlacementCase) -> None:
    nodes, count, exclude, seed = case
    before = list(nodes)
    placement.choose_targets(nodes, count, block_size=BLOCK, exclude=exclude, rng=random.Random(seed))
    assert nodes == before


# --- choose_targets: examples -----------------------------------------------------------------


def test_free_space_threshold_is_block_plus_reserve() -> None:
    nodes = [node("short", remaining=ROOM - 1), node("exact", remaining=ROOM), node("plenty", remaining=ROOM * 10)]
    targets = placement.choose_targets(nodes, 3, block_size=BLOCK, rng=random.Random(0))
    assert sorted(ids(targets)) == ["exact", "plenty"]


def test_threshold_follows_the_block_size() -> None:
    small_block = 1024
    nodes = [node("a", remaining=RESERVED_BYTES + small_block), node("b", remaining=RESERVED_BYTES + small_block - 1)]
    assert ids(placement.choose_targets(nodes, 2, block_size=small_block, rng=random.Random(0))) == ["a"]
    assert placement.choose_targets(nodes, 2, block_size=10 * GIB, rng=random.Random(0)) == []


def test_unusable_and_excluded_nodes_are_never_chosen() -> None:
    nodes = [node("dead", usable=False), node("excluded"), node("ok")]
    for seed in range(20):
        targets = placement.choose_targets(nodes, 3, block_size=BLOCK, exclude={"excluded"}, rng=random.Random(seed))
        assert ids(targets) == ["ok"]


def test_no_eligible_node_gives_no_targets() -> None:
    assert placement.choose_targets([], 3, block_size=BLOCK) == []
    assert placement.choose_targets([node("a", usable=False)], 3, block_size=BLOCK) == []


def test_count_zero_gives_no_targets() -> None:
    assert placement.choose_targets([node("a"), node("b")], 0, block_size=BLOCK) == []


def test_negative_count_gives_no_targets() -> None:
    nodes = [node(f"dn{i}") for i in range(4)]
    assert placement.choose_targets(nodes, -1, block_size=BLOCK, rng=random.Random(0)) == []


def test_fewer_transfers_win_over_emptier_disks() -> None:
    nodes = [
        node("busy-empty", remaining=990 * GIB, transfers=3),
        node("idle-full", remaining=50 * GIB, transfers=0),
        node("some-half", remaining=500 * GIB, transfers=1),
    ]
    for seed in range(20):
        targets = placement.choose_targets(nodes, 3, block_size=BLOCK, rng=random.Random(seed))
        assert ids(targets) == ["idle-full", "some-half", "busy-empty"]


def test_emptier_usage_bucket_wins_when_transfers_are_equal() -> None:
    nodes = [node("90pct", remaining=100 * GIB), node("10pct", remaining=900 * GIB), node("50pct", remaining=500 * GIB)]
    for seed in range(20):
        targets = placement.choose_targets(nodes, 3, block_size=BLOCK, rng=random.Random(seed))
        assert ids(targets) == ["10pct", "50pct", "90pct"]


def first_choices(nodes: list[NodeLoad], seeds: int = 300) -> Counter[str]:
    """How often each node comes first over many seeded placements."""
    return Counter(
        placement.choose_targets(nodes, 1, block_size=BLOCK, rng=random.Random(seed))[0].id for seed in range(seeds)
    )


def test_equally_loaded_nodes_share_the_first_place() -> None:
    nodes = [node(f"dn{i}") for i in range(5)]
    counts = first_choices(nodes)
    assert set(counts) == set(ids(nodes)), f"some node was never chosen first: {counts}"
    assert min(counts.values()) >= 20, f"placement is badly skewed: {counts}"


def test_nodes_in_the_same_usage_bucket_share_the_first_place() -> None:
    """Usage within one 10% bucket counts as equal, so a marginally fuller node still gets writes."""
    nodes = [node("51pct", remaining=490 * GIB), node("58pct", remaining=420 * GIB)]
    counts = first_choices(nodes)
    assert set(counts) == {"51pct", "58pct"}


def test_a_less_loaded_node_is_always_first() -> None:
    nodes = [node("a", transfers=1), node("b", transfers=0), node("c", transfers=1)]
    assert first_choices(nodes) == Counter({"b": 300})


def test_without_an_rng_targets_are_still_valid() -> None:
    nodes = [node("a"), node("b", usable=False), node("c", transfers=2)]
    assert ids(placement.choose_targets(nodes, 3, block_size=BLOCK)) == ["a", "c"]


# --- choose_excess ----------------------------------------------------------------------------


@given(clusters(), st.integers(0, 14))
def test_choose_excess_leaves_exactly_keep_replicas(replicas: list[NodeLoad], keep: int) -> None:
    excess = placement.choose_excess(replicas, keep)
    if len(replicas) <= keep:
        assert excess == []
        return
    assert len(excess) == len(replicas) - keep
    assert len(set(ids(excess))) == len(excess)
    assert all(n in replicas for n in excess)


@given(clusters(), st.integers(0, 14))
def test_choose_excess_takes_from_the_fullest_nodes(replicas: list[NodeLoad], keep: int) -> None:
    excess = placement.choose_excess(replicas, keep)
    kept = [n for n in replicas if n not in excess]
    if excess and kept:
        assert min(n.used_fraction for n in excess) >= max(n.used_fraction for n in kept)


@given(clusters(), st.integers(0, 14))
def test_choose_excess_is_independent_of_input_order(replicas: list[NodeLoad], keep: int) -> None:
    shuffled = list(replicas)
    random.Random(len(replicas)).shuffle(shuffled)
    assert sorted(ids(placement.choose_excess(replicas, keep))) == sorted(ids(placement.choose_excess(shuffled, keep)))


def test_choose_excess_example() -> None:
    replicas = [
        node("half", remaining=500 * GIB),
        node("full", remaining=10 * GIB),
        node("empty", remaining=990 * GIB),
        node("mostly", remaining=200 * GIB),
    ]
    assert ids(placement.choose_excess(replicas, keep=2)) == ["full", "mostly"]
    assert ids(placement.choose_excess(replicas, keep=3)) == ["full"]
    assert placement.choose_excess(replicas, keep=4) == []
    assert placement.choose_excess(replicas, keep=5) == []


def test_choose_excess_breaks_ties_by_id() -> None:
    replicas = [node("c"), node("a"), node("b")]
    assert ids(placement.choose_excess(replicas, keep=1)) == ["a", "b"]


def test_choose_excess_with_keep_zero_drops_everything() -> None:
    replicas = [node("a"), node("b", remaining=0)]
    assert sorted(ids(placement.choose_excess(replicas, keep=0))) == ["a", "b"]


# --- choose_source ----------------------------------------------------------------------------


@given(clusters(), st.integers(0, 2**32))
def test_choose_source_picks_a_usable_holder_with_fewest_transfers(holders: list[NodeLoad], seed: int) -> None:
    source = placement.choose_source(holders, random.Random(seed))
    usable = [n for n in holders if n.usable]
    if not usable:
        assert source is None
        return
    assert source is not None
    assert source in usable
    assert source.active_transfers == min(n.active_transfers for n in usable)
    assert placement.choose_source(holders, random.Random(seed)) == source, "same seed, same source"


def test_choose_source_none_without_holders() -> None:
    assert placement.choose_source([]) is None
    assert placement.choose_source([node("a", usable=False), node("b", usable=False)]) is None


def test_choose_source_ignores_free_space() -> None:
    """A full node can still be read from."""
    assert placement.choose_source([node("full", remaining=0)]) == node("full", remaining=0)


def test_choose_source_prefers_the_idlest_usable_holder() -> None:
    holders = [node("dead-idle", usable=False), node("busy", transfers=4), node("calm", transfers=1)]
    for seed in range(20):
        source = placement.choose_source(holders, random.Random(seed))
        assert source is not None and source.id == "calm"


def test_choose_source_spreads_over_equally_busy_holders() -> None:
    holders = [node("a", transfers=1), node("b", transfers=1), node("c", transfers=1), node("d", transfers=2)]
    chosen: Counter[str] = Counter()
    for seed in range(300):
        source = placement.choose_source(holders, random.Random(seed))
        assert source is not None
        chosen[source.id] += 1
    assert set(chosen) == {"a", "b", "c"}


def test_choose_source_does_not_reorder_its_input() -> None:
    holders = [node(f"dn{i}", transfers=i % 2) for i in range(6)]
    before = list(holders)
    placement.choose_source(holders, random.Random(1))
    assert holders == before


# --- racks -------------------------------------------------------------------------------


def racked(node_id: str, rack: str, host: str = "", **kwargs: object) -> placement.NodeLoad:
    fields: dict[str, object] = dict(
        id=node_id,
        url=f"http://{node_id}",
        rack=rack,
        remaining=10**12,
        capacity=2 * 10**12,
        active_transfers=0,
        usable=True,
        host=host,
    )
    fields.update(kwargs)
    return placement.NodeLoad(**fields)  # type: ignore[arg-type]


TWO_RACKS = [racked(f"a{i}", "/r1") for i in range(3)] + [racked(f"b{i}", "/r2") for i in range(3)]


@given(st.integers(0, 10_000))
def test_three_replicas_follow_the_hdfs_rack_policy(seed: int) -> None:
    first, second, third = placement.choose_targets(TWO_RACKS, 3, block_size=1, rng=random.Random(seed))
    assert second.rack != first.rack  # the second replica goes to another rack
    assert third.rack == second.rack and third.id != second.id  # the third shares the second's rack


def test_first_replica_goes_to_the_writers_node() -> None:
    nodes = [*TWO_RACKS, racked("local", "/r2", host="10.0.0.9")]
    for seed in range(50):
        chosen = placement.choose_targets(nodes, 3, block_size=1, writer_host="10.0.0.9", rng=random.Random(seed))
        assert chosen[0].id == "local"
        assert {n.rack for n in chosen} == {"/r1", "/r2"}


def test_new_replicas_of_a_one_rack_block_go_to_another_rack() -> None:
    chosen = placement.choose_targets(TWO_RACKS, 1, block_size=1, existing_racks=["/r1", "/r1"], exclude={"a0", "a1"})
    assert chosen[0].rack == "/r2"


def test_one_rack_falls_back_gracefully() -> None:
    nodes = [racked(f"n{i}", "/only") for i in range(4)]
    chosen = placement.choose_targets(nodes, 3, block_size=1, rng=random.Random(1))
    assert len({n.id for n in chosen}) == 3


@given(st.integers(0, 10_000))
def test_trimming_never_empties_a_rack_while_another_has_several(seed: int) -> None:
    rng = random.Random(seed)
    replicas = [
        racked("a0", "/r1", remaining=rng.randrange(1, 10**12)),
        racked("b0", "/r2", remaining=rng.randrange(1, 10**12)),
        racked("b1", "/r2", remaining=rng.randrange(1, 10**12)),
        racked("b2", "/r2", remaining=rng.randrange(1, 10**12)),
    ]
    kept = {n.id for n in replicas} - {n.id for n in placement.choose_excess(replicas, keep=3)}
    assert "a0" in kept and len(kept) == 3


def test_mis_replication_rules() -> None:
    assert placement.is_mis_replicated(["/r1", "/r1", "/r1"], target=3, racks_available=2)
    assert not placement.is_mis_replicated(["/r1", "/r2", "/r2"], target=3, racks_available=2)
    assert not placement.is_mis_replicated(["/r1", "/r1"], target=2, racks_available=1)
    assert not placement.is_mis_replicated(["/r1"], target=1, racks_available=3)
