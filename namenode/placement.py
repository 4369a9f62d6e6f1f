"""Replica placement: pure functions over a snapshot of DataNode load (no I/O, unit-tested).

Targets are distinct, live (not stale), in service, with room for a whole block; the
least loaded come first (active transfers, then fraction of disk used), and nodes of
similar load are shuffled so writers spread over the cluster instead of piling onto
whichever node sorts first.
"""

from __future__ import annotations

import random
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


def choose_targets(
    nodes: Sequence[NodeLoad],
    count: int,
    *,
    block_size: int,
    exclude: set[str] | None = None,
    rng: random.Random | None = None,
) -> list[NodeLoad]:
    """Up to `count` distinct targets, least loaded first, ties broken at random."""
    candidates = eligible(nodes, exclude or set(), block_size)
    (rng or random).shuffle(candidates)
    candidates.sort(key=lambda n: (n.active_transfers, int(n.used_fraction * USAGE_BUCKETS)))
    return candidates[: max(count, 0)]


def choose_excess(replica_nodes: Sequence[NodeLoad], keep: int) -> list[NodeLoad]:
    """Which replicas to delete so `keep` remain: the fullest nodes give theirs up first."""
    if len(replica_nodes) <= keep:
        return []
    ordered = sorted(replica_nodes, key=lambda n: (-n.used_fraction, n.id))
    return ordered[: len(replica_nodes) - keep]


def choose_source(holders: Sequence[NodeLoad], rng: random.Random | None = None) -> NodeLoad | None:
    """The replica holder to copy from: the one with the fewest transfers under way."""
    usable = [node for node in holders if node.usable]
    if not usable:
        return None
    (rng or random).shuffle(usable)
    return min(usable, key=lambda n: n.active_transfers)
