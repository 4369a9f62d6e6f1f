"""Bit rot with real processes: random bytes flipped in the data and meta files of finalised replicas.

One seeded run (seed printed; replay with DFS_BITROT_SEED=<seed>) rots replicas of several files
- multi-block, with a partial last chunk, single-chunk - in every part of a replica: data bytes,
the bytes of a partial last chunk, every byte of the 16-byte meta header, the digest area and the
last (partial chunk's) digest. Most blocks keep a good replica; one block loses all three.
"""

from __future__ import annotations

import itertools
import os
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from client.protocol.block_format import (
    DEFAULT_BYTES_PER_CHECKSUM,
    DIGEST_SIZE,
    META_HEADER_SIZE,
    chunk_digests,
    encode_meta_header,
    meta_file_name,
    validate_bytes_per_checksum,
)
from client.protocol.client_namenode import BlockHealth, ClusterEvents, EventKind
from client.protocol.errors import BlockMissingError
from client.protocol.status import StatusRoutes
from client.sync_client import DFSClient
from tests.minicluster import MiniCluster, wait_until

pytestmark = pytest.mark.cluster

BLOCK = 256 * 1024
CHUNK = DEFAULT_BYTES_PER_CHECKSUM
#: Every replica is re-verified about every 2 s, fast enough to finish within the test.
DATANODE_ARGS = ["--scan-period", "2", "--scan-rate", "100"]
#: Files read while rotten (each block loses at most two of its three replicas).
READ_FILES = {
    "/rot/read/a": 3 * BLOCK + 1000,
    "/rot/read/b": BLOCK + 70000,
    "/rot/read/c": 50000,
    "/rot/read/d": 2 * BLOCK,
}
#: Files nobody reads until the scanner has reported every rotten replica (two of three per block).
UNREAD_FILES = {"/rot/unread/a": 2 * BLOCK + 70001, "/rot/unread/b": 3000, "/rot/unread/c": BLOCK + 1}
UNREAD_FILES["/rot/unread/d"] = 3 * BLOCK + CHUNK + 17
#: Its first block loses every replica; its second only one.
DEAD_FILE, DEAD_SIZE = "/rot/dead", BLOCK + 5000
#: Kinds of flips, taken in turn: half of them hit the header, so 32 rotten replicas hit all 16 of its bytes.
#: What datanode/scanner.py logs for each corrupt replica it finds (console log, maybe coloured).
SCANNER_FOUND = re.compile(r"scanner found a corrupt replica\s+block=(\d+)")
ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")
KINDS = ("header", "data", "header", "digest", "header", "last_chunk", "header", "last_digest")


@dataclass(frozen=True)
class Replica:
    path: str
    index: int  # of the block in its file
    block_id: int
    gen_stamp: int
    datanode_id: str
    data_file: Path

    @property
    def meta_file(self) -> Path:
        return self.data_file.parent / meta_file_name(self.block_id, self.gen_stamp)


@dataclass(frozen=True)
class Flip:
    replica: Replica
    kind: str
    file: Path
    offset: int
    mask: int
    #: A meta file that verifies exactly like the original one (see `_is_equivalent_header`).
    equivalent_meta: bytes | None

    @property
    def key(self) -> tuple[int, str]:
        return self.replica.block_id, self.replica.datanode_id


def test_every_flip_is_caught_and_no_read_returns_wrong_bytes(make_cluster: Callable[..., MiniCluster]) -> None:
    """No read of a rotten file returns wrong bytes: a block with a good replica reads back exactly, one
    without fails with BlockMissingError; the scanner alone reports every rotten replica of files nobody
    reads, and the NameNode replaces and deletes them until each block has three intact replicas again."""
    seed = int(os.environ.get("DFS_BITROT_SEED", random.randrange(2**32)))
    print(f"bit rot seed: {seed} (replay with DFS_BITROT_SEED={seed})")
    rng = random.Random(seed)
    cluster = make_cluster(datanodes=4, datanode_args=DATANODE_ARGS)
    sizes = {**READ_FILES, **UNREAD_FILES, DEAD_FILE: DEAD_SIZE}
    contents = {path: rng.randbytes(size) for path, size in sizes.items()}
    with cluster.client() as fs:
        for path, data in contents.items():
            fs.write_bytes(path, data, block_size=BLOCK, replication=3)
        replicas = {path: _replicas(cluster, fs, path) for path in contents}

    flips = _rot(rng, replicas, contents)
    for flip in flips:
        print(
            f"  {flip.kind:<11} block {flip.replica.block_id} on {flip.replica.datanode_id}: {flip.file.name}"
            f"[{flip.offset}] ^= {flip.mask:#04x}{' (equivalent header)' if flip.equivalent_meta else ''}"
        )
    header_offsets = {flip.offset for flip in flips if flip.kind == "header"}
    assert header_offsets == set(range(META_HEADER_SIZE)), "the run must rot every byte of the meta header"

    with cluster.client() as fs:
        for path in READ_FILES:
            assert fs.read_bytes(path) == contents[path], path
        with pytest.raises(BlockMissingError):
            fs.read_bytes(DEAD_FILE)
        with fs.open(DEAD_FILE) as handle:  # the rest of that file is still readable
            handle.seek(BLOCK)
            assert handle.read() == contents[DEAD_FILE][BLOCK:]

    detectable = {f.key for f in flips if f.equivalent_meta is None}
    wait_until(lambda: detectable <= _corrupt_reports(cluster), 90, "a corrupt-replica report for every flip")
    # Nobody read the unread files: their rot was found by the scanners themselves (not only by a copy
    # the NameNode started from a rotten replica, which verifies too).
    unread = {key for key in detectable if any(f.replica.path in UNREAD_FILES for f in flips if f.key == key)}
    wait_until(lambda: unread <= _scanner_finds(cluster), 60, "the scanner to log every rotten unread replica")

    healing = {path: reps for path, reps in replicas.items() if path != DEAD_FILE}
    healing[DEAD_FILE] = [r for r in replicas[DEAD_FILE] if r.index == 1]
    gaps: list[str] = []

    def healed() -> bool:
        gaps[:] = _healing_gaps(cluster, healing, contents, flips)
        return not gaps

    try:
        wait_until(healed, 120, "every rotten replica replaced by a good copy")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}: {gaps}") from exc
    with cluster.client() as fs:
        for path in [*READ_FILES, *UNREAD_FILES]:
            assert fs.read_bytes(path) == contents[path], path
        dead = fs.fsck(DEAD_FILE, files=True, blocks=True).detail[0]
        assert [block.health for block in dead.blocks] == [BlockHealth.CORRUPT, BlockHealth.HEALTHY]
        with pytest.raises(BlockMissingError):
            fs.read_bytes(DEAD_FILE)


def _replicas(cluster: MiniCluster, fs: DFSClient, path: str) -> list[Replica]:
    found = []
    for index, block in enumerate(fs.block_locations(path).blocks):
        assert len(block.locations) == 3
        for node in block.locations:
            data_file = cluster.replica_file(cluster.node_by_id(node.id), block.block.block_id)
            assert data_file is not None, f"block {block.block.block_id} is not finalised on {node.id}"
            found.append(Replica(path, index, block.block.block_id, block.block.gen_stamp, node.id, data_file))
    return found


def _rot(rng: random.Random, replicas: dict[str, list[Replica]], contents: dict[str, bytes]) -> list[Flip]:
    """Pick the rotten replicas (1-2 of 3 per read block, 2 per unread block, all of the dead block's
    first) and flip one random byte of each, the kind of flip taken in turn from KINDS."""
    chosen: list[Replica] = []
    for path, reps in replicas.items():
        for index in sorted({r.index for r in reps}):
            of_block = [r for r in reps if r.index == index]
            chosen.extend(rng.sample(of_block, _rotten_count(rng, path, index)))
    rng.shuffle(chosen)
    header_offsets = list(range(META_HEADER_SIZE))
    rng.shuffle(header_offsets)
    next_header = itertools.cycle(header_offsets)
    return [
        _flip(rng, replica, kind, next_header, _block_length(replica, contents))
        for replica, kind in zip(chosen, itertools.cycle(KINDS), strict=False)
    ]


def _rotten_count(rng: random.Random, path: str, index: int) -> int:
    if path == DEAD_FILE:
        return 3 if index == 0 else 1
    return 2 if path in UNREAD_FILES else rng.choice((1, 2))


def _block_length(replica: Replica, contents: dict[str, bytes]) -> int:
    return min(BLOCK, len(contents[replica.path]) - replica.index * BLOCK)


def _flip(rng: random.Random, replica: Replica, kind: str, next_header: itertools.cycle[int], length: int) -> Flip:
    meta_size = META_HEADER_SIZE + -(-length // CHUNK) * DIGEST_SIZE
    last_chunk = (length - 1) // CHUNK * CHUNK
    file, offset = {
        "data": lambda: (replica.data_file, rng.randrange(length)),
        "last_chunk": lambda: (replica.data_file, rng.randrange(last_chunk, length)),
        "header": lambda: (replica.meta_file, next(next_header)),
        "digest": lambda: (replica.meta_file, rng.randrange(META_HEADER_SIZE, meta_size)),
        "last_digest": lambda: (replica.meta_file, rng.randrange(meta_size - DIGEST_SIZE, meta_size)),
    }[kind]()
    assert replica.meta_file.stat().st_size == meta_size and replica.data_file.stat().st_size == length
    mask = rng.randrange(1, 256)
    raw = bytearray(file.read_bytes())
    raw[offset] ^= mask
    file.write_bytes(bytes(raw))
    equivalent = kind == "header" and _is_equivalent_header(bytes(raw[:META_HEADER_SIZE]), length)
    return Flip(replica, kind, file, offset, mask, bytes(raw) if equivalent else None)


def _is_equivalent_header(header: bytes, length: int) -> bool:
    """A flip that turns the chunk size into another valid one, in a replica no longer than either.

    Such a replica is one chunk [0, length) under both sizes, with the same single digest: every read,
    scan, copy, truncate and checksum of it gives exactly what the original gives, so it cannot yield a
    wrong byte, and nothing in the replica can tell it apart from one written with that chunk size.
    Only the chunk size field (bytes 8-11) can do this; every other header byte is checked."""
    if header[:8] + header[12:] != encode_meta_header(CHUNK)[:8] + bytes(4):
        return False
    new_size = int.from_bytes(header[8:12], "little")
    try:
        validate_bytes_per_checksum(new_size)
    except ValueError:
        return False
    return length <= min(CHUNK, new_size)


def _corrupt_reports(cluster: MiniCluster) -> set[tuple[int, str]]:
    """(block id, DataNode id) of every corrupt replica the NameNode was told about."""
    response = httpx.get(cluster.url + StatusRoutes.EVENTS, params={"limit": 1000}, timeout=10, verify=cluster.verify)
    response.raise_for_status()
    return {
        (event.block_id, event.datanode_id)
        for event in ClusterEvents.model_validate_json(response.content).events
        if event.kind == EventKind.CORRUPT_REPLICA and event.block_id is not None and event.datanode_id is not None
    }


def _scanner_finds(cluster: MiniCluster) -> set[tuple[int, str]]:
    """(block id, DataNode id) of every replica a DataNode's block scanner logged as corrupt."""
    found = set()
    for node in cluster.datanodes:
        datanode_id = cluster.datanode_info(node)["id"]
        text = ANSI_COLOUR.sub("", node.log_path.read_text(errors="replace"))
        found |= {(int(block_id), datanode_id) for block_id in SCANNER_FOUND.findall(text)}
    return found


def _healing_gaps(
    cluster: MiniCluster, replicas: dict[str, list[Replica]], contents: dict[str, bytes], flips: list[Flip]
) -> list[str]:
    """What still keeps a block from three good replicas in the NameNode's view and exactly three intact
    replica files on the DataNodes' disks (each rotten one deleted, or overwritten by a good copy)."""
    gaps = []
    with cluster.client() as fs:
        for path, reps in replicas.items():
            blocks = fs.fsck(path, files=True, blocks=True, locations=True).detail[0].blocks
            for index in sorted({r.index for r in reps}):
                block = blocks[index]
                if block.good_replicas != 3 or block.health is not BlockHealth.HEALTHY:
                    states = [(r.datanode_id[-6:], r.state) for r in block.replicas]
                    gaps.append(f"{path}#{index}: {block.health.value}, {block.good_replicas} good, {states}")
    for path, reps in replicas.items():
        for index in sorted({r.index for r in reps}):
            replica = next(r for r in reps if r.index == index)
            data = contents[path][index * BLOCK : (index + 1) * BLOCK]
            accepted = {encode_meta_header(CHUNK) + chunk_digests(data, CHUNK)}
            accepted |= {
                f.equivalent_meta for f in flips if f.replica.block_id == replica.block_id and f.equivalent_meta
            }
            copies = _intact_copies(cluster, replica, data, accepted)
            if copies != 3:
                gaps.append(f"{path}#{index}: {copies} intact copies on disk (-1: a damaged one)")
    return gaps


def _intact_copies(cluster: MiniCluster, replica: Replica, data: bytes, accepted_metas: set[bytes]) -> int:
    """How many DataNodes hold the block in `finalized/`; -1 if any of those copies is not intact."""
    copies = 0
    for node in cluster.datanodes:
        data_file = cluster.replica_file(node, replica.block_id)
        if data_file is None:
            continue
        try:
            meta = (data_file.parent / meta_file_name(replica.block_id, replica.gen_stamp)).read_bytes()
            if data_file.read_bytes() != data or meta not in accepted_metas:
                return -1
        except FileNotFoundError:
            return -1  # being deleted or moved right now: look again
        copies += 1
    return copies
