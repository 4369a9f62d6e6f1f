"""Replica placement: pure functions over a snapshot of DataNode load (no I/O, unit-tested).

The policy is HDFS's default: the first replica on the writer's own node if it is a
DataNode (else a light one), the second on a different rack, the third on the second's
rack but another node, any further ones anywhere. Targets are always distinct, live
(not stale), in service, with room for a whole block; among the allowed nodes the
least loaded come first, and nodes of similar load are shuffled so writers spread over
the cluster. With one rack the rack rules simply have nothing to choose between.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: Free space a node must keep beyond the block itself, so a full disk is never the last write.
RESERVED_BYTES = 64 * 1024 * 1024
#: Fraction-used buckets: nodes within 10% of each other count as equally full.
USAGE_BUCKETS = 10


@dataclass(frozen=True)
class NodeLoad:
    """What placement needs to know about one DataNode."""

    id: str
    url: str
    rack: str
    remaining: int
    capacity: int
    active_transfers: int
    usable: bool  # live, not stale, in service
    host: str = ""

    @property
    def used_fraction(self) -> float:
        if self.capacity <= 0:
            return 1.0
        return 1.0 - self.remaining / self.capacity


def eligible(nodes: Iterable[NodeLoad], exclude: set[str], block_size: int) -> list[NodeLoad]:
    """Nodes that may take a new replica of a block of `block_size` bytes."""
    return [
        node
        for node in nodes
        if node.usable and node.id not in exclude and node.remaining >= block_size + RESERVED_BYTES
    ]


def _lightest(candidates: list[NodeLoad], rng: random.Random) -> NodeLoad:
    shuffled = list(candidates)
    rng.shuffle(shuffled)
    return min(shuffled, key=lambda n: (n.active_transfers, int(n.used_fraction * USAGE_BUCKETS)))


def _preferred(candidates: list[NodeLoad], racks: list[str], writer_host: str | None) -> list[NodeLoad]:
    """The candidates the policy wants for the next replica, given the racks used so far."""
    if not racks:
        local = [n for n in candidates if writer_host and n.host == writer_host]
        return local or candidates
    if len(racks) == 1 or racks[0] == racks[1]:
        return [n for n in candidates if n.rack not in racks] or candidates
    if len(racks) == 2:
        return [n for n in candidates if n.rack == racks[1]] or candidates
    return candidates


def choose_targets(
    nodes: Sequence[NodeLoad],
    count: int,
    *,
    block_size: int,
    exclude: set[str] | None = None,
    existing_racks: Sequence[str] = (),
    writer_host: str | None = None,
    rng: random.Random | None = None,
) -> list[NodeLoad]:
    """Up to `count` distinct targets for a block whose current replicas sit on `existing_racks`."""
    rng = rng or random.Random()
    candidates = eligible(nodes, exclude or set(), block_size)
    racks = list(existing_racks)
    chosen: list[NodeLoad] = []
    while len(chosen) < max(count, 0) and candidates:
        node = _lightest(_preferred(candidates, racks, writer_host), rng)
        chosen.append(node)
        racks.append(node.rack)
        candidates = [n for n in candidates if n.id != node.id]
    return chosen


def racks_wanted(target: int, racks_available: int) -> int:
    """How many racks a block's replicas should span: two when it has two or more replicas and can."""
    return min(2, racks_available) if target >= 2 else 1


def is_mis_replicated(replica_racks: Iterable[str], target: int, racks_available: int) -> bool:
    return len(set(replica_racks)) < racks_wanted(target, racks_available)


def choose_excess(replica_nodes: Sequence[NodeLoad], keep: int) -> list[NodeLoad]:
    """Which replicas to delete so `keep` remain: never the last one on a rack while another rack
    holds several, and among the allowed the fullest node gives its replica up first."""
    remaining = list(replica_nodes)
    removed: list[NodeLoad] = []
    while len(remaining) > max(keep, 0):
        per_rack = Counter(n.rack for n in remaining)
        crowded = [n for n in remaining if per_rack[n.rack] > 1]
        pool = crowded or remaining
        victim = min(pool, key=lambda n: (-n.used_fraction, n.id))
        removed.append(victim)
        remaining.remove(victim)
    return removed


def choose_source(holders: Sequence[NodeLoad], rng: random.Random | None = None) -> NodeLoad | None:
    """The replica holder to copy from: the one with the fewest transfers under way."""
    usable = [node for node in holders if node.usable]
    if not usable:
        return None
    (rng or random).shuffle(usable)
    return min(usable, key=lambda n: n.active_transfers)
