"""A randomised soak test: concurrent writers, readers, renames and deletes while DataNodes and
the NameNode are killed, paused and restarted at random; nothing acknowledged may be lost.

The seed is printed and named in every failure: replay with DFS_CHAOS_SEED=<seed> (the random
choices repeat; the timing of faults against operations does not). DFS_CHAOS_SECONDS sets the
length of the default run; the long run (`-m slow`) takes DFS_CHAOS_SLOW_SECONDS (600 by default).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import pytest

from client.local_cluster import NodeProcess
from client.sync_client import DFSClient
from tests.chaos import ROLES, Ambiguity, Gate, Model, Worker, resolve, thread_stacks, verify_namespace
from tests.conftest import BACKENDS
from tests.minicluster import MiniCluster, wait_until

pytestmark = pytest.mark.cluster

BLOCK = 256 * 1024
ROOT = "/chaos"
#: At most this many DataNodes down or paused at once: replication 3 always leaves one replica.
MAX_DATANODES_DOWN = 2
#: Longest an operation may take before the checkpoint calls it a hang.
HANG_S = 240.0


def chaos_seconds(variable: str, default: float) -> float:
    return float(os.environ.get(variable) or default)


DEFAULT_SECONDS = chaos_seconds("DFS_CHAOS_SECONDS", 90)
SLOW_SECONDS = chaos_seconds("DFS_CHAOS_SLOW_SECONDS", 600)


@dataclass
class Recovery:
    due: float
    node: NodeProcess
    action: str  # start or resume


class FaultInjector(threading.Thread):
    """kill -9 / SIGSTOP DataNodes and kill -9 the NameNode at random, undoing DataNode faults later."""

    def __init__(self, cluster: MiniCluster, model: Model) -> None:
        super().__init__(name="chaos-faults", daemon=True)
        self.cluster, self.model = cluster, model
        self.stop = threading.Event()
        self.rng = random.Random(f"{model.seed}/faults")
        self.recoveries: list[Recovery] = []
        self._cond = threading.Condition()
        self._paused = False
        self._idle = False
        self.error: BaseException | None = None

    def pause(self) -> None:
        """Wait until no fault is being injected; forget pending recoveries (the caller heals)."""
        with self._cond:
            self._paused = True
            self._cond.notify_all()
            if not self._cond.wait_for(lambda: self._idle or not self.is_alive(), HANG_S):
                raise TimeoutError("the fault injector did not pause")
            self.recoveries.clear()

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    def halt(self) -> None:
        """Stop injecting and undo the faults still in force (workers must not wait on a paused node)."""
        self.stop.set()
        self.resume()
        self.join(HANG_S)

    def run(self) -> None:
        try:
            self._loop()
            for recovery in self.recoveries:
                recovery.due = 0
            self._recover_due()
        except BaseException as exc:
            self.error = exc
            self.model.violation(f"fault injector crashed: {type(exc).__name__}: {exc}")

    def _loop(self) -> None:
        next_fault = time.monotonic() + self.rng.uniform(1, 4)
        while not self.stop.is_set():
            with self._cond:
                while self._paused and not self.stop.is_set():
                    self._idle = True
                    self._cond.notify_all()
                    self._cond.wait(0.2)
                self._idle = False
                if not self.stop.is_set():
                    self._recover_due()
                    if time.monotonic() >= next_fault:
                        self._inject()
                        next_fault = time.monotonic() + self.rng.uniform(2, 7)
            self.stop.wait(0.1)

    def _recover_due(self) -> None:
        now = time.monotonic()
        for recovery in [r for r in self.recoveries if r.due <= now]:
            self.recoveries.remove(recovery)
            if recovery.action == "start":
                recovery.node.start()
            else:
                recovery.node.resume()

    def _inject(self) -> None:
        down = {r.node.name for r in self.recoveries}
        healthy = [n for n in self.cluster.datanodes if n.name not in down]
        kinds = ["kill_namenode"] * 2 + (
            ["kill_datanode", "pause_datanode"] * 3 if len(down) < MAX_DATANODES_DOWN else []
        )
        kind = self.rng.choice(kinds)
        now = time.monotonic()
        if kind == "kill_namenode":
            self.cluster.restart_namenode(kill=True)
        elif kind == "kill_datanode":
            node = self.rng.choice(healthy)
            node.kill()
            self.recoveries.append(Recovery(now + self.rng.uniform(2, 14), node, "start"))
        else:
            node = self.rng.choice(healthy)
            node.pause()
            self.recoveries.append(Recovery(now + self.rng.uniform(1, 10), node, "resume"))
        with self.model.lock:
            self.model.stats.faults[kind] += 1


class ChaosRun:
    """The workload, the injector and the checkpoints of one run."""

    def __init__(self, cluster: MiniCluster, seed: int, seconds: float, checkpoint_every: float = 30.0) -> None:
        self.cluster, self.seed, self.seconds, self.checkpoint_every = cluster, seed, seconds, checkpoint_every
        self.model = Model(ROOT, seed, BLOCK)
        self.stop = threading.Event()
        self.gate = Gate()
        self.injector = FaultInjector(cluster, self.model)
        roles = ["writer", "writer", "reader", "mover", "mixed"]
        self.workers = [
            Worker(i, role, self.model, cluster.client, self.gate, self.stop) for i, role in enumerate(roles)
        ]
        assert set(roles) <= set(ROLES)

    def replay(self) -> str:
        return f"replay with DFS_CHAOS_SEED={self.seed}"

    def run(self) -> None:
        with self.cluster.client() as fs:
            for number in range(4):
                fs.mkdirs(f"{ROOT}/d{number}")
                self.model.dirs.add(f"{ROOT}/d{number}")
        threads: list[threading.Thread] = [*self.workers, self.injector]
        for thread in threads:
            thread.start()
        try:
            end = time.monotonic() + self.seconds
            while (now := time.monotonic()) < end:
                self.stop.wait(min(self.checkpoint_every, end - now))
                if time.monotonic() < end - 5:
                    self.checkpoint(final=False)
        finally:
            self.injector.halt()
            self.stop.set()
            self.gate.resume()
            for worker in self.workers:
                worker.join(HANG_S)
        hung = [t.name for t in threads if t.is_alive()]
        assert not hung, f"threads still running after the run: {hung}\n{thread_stacks()}\n{self.replay()}"
        self.checkpoint(final=True)

    def checkpoint(self, *, final: bool) -> None:
        """Pause everything, heal, settle every ambiguity, and compare the namespace with the model."""
        if not final:
            if not self.gate.pause(HANG_S):
                in_flight = {name: (op, round(time.monotonic() - t)) for name, (op, t) in self.gate.in_flight.items()}
                pytest.fail(f"operations hang: {in_flight}\n{thread_stacks()}\n{self.replay()}")
            self.injector.pause()
        self.cluster.heal()
        with self.cluster.client() as fs:
            for amb in list(self.model.pending):
                wait_until(
                    partial(_try_resolve, fs, self.model, amb),
                    90,
                    f"the outcome of a failed {amb.kind} of {amb.path} ({amb.error}); {self.replay()}",
                    interval=0.5,
                )
                self.model.pending.remove(amb)
                self.model.release(*amb.reserved)
            verify_namespace(fs, self.model)
            self.cluster.assert_metadata_consistent()
            self.model.stats.checkpoints += 1
            self.assert_no_violations()
            if final:
                self.wait_fully_replicated(fs)
        if not final:
            self.injector.resume()
            self.gate.resume()

    def wait_fully_replicated(self, fs: DFSClient, timeout: float = 180) -> None:
        """fsck: no block under-replicated, mis-replicated, corrupt or missing, and no file left open."""
        deadline = time.monotonic() + timeout
        while True:
            report = fs.fsck(ROOT)
            bad = report.under_replicated + report.mis_replicated + report.corrupt + report.missing
            if bad + report.corrupt_replicas + report.open_files == 0:
                return
            if time.monotonic() > deadline:
                detail = fs.fsck(ROOT, files=True, blocks=True, locations=True)
                unhealthy = [
                    f"{file.path}: {block.model_dump_json()}"
                    for file in detail.detail
                    for block in file.blocks
                    if block.health != "healthy"
                ]
                summary = report.model_dump_json(exclude={"detail"})
                pytest.fail(
                    f"not fully replicated after {timeout:.0f}s: {summary}\n"
                    + "\n".join(unhealthy[:20])
                    + f"\n{self.replay()}"
                )
            time.sleep(1.0)

    def assert_no_violations(self) -> None:
        violations = "\n".join(self.model.violations)
        assert not self.model.violations, f"{len(self.model.violations)} violations:\n{violations}\n{self.replay()}"

    def summary(self) -> str:
        stats = self.model.stats
        kinds = sorted({*stats.acknowledged, *stats.failed})
        lines = [f"chaos run: seed {self.seed}, {self.seconds:.0f}s, {stats.checkpoints} checkpoints"]
        lines += [
            f"  {kind:<11} acknowledged {stats.acknowledged[kind]:>5}  failed {stats.failed[kind]:>4}" for kind in kinds
        ]
        lines.append(f"  faults: {dict(stats.faults)}")
        lines.append(f"  ambiguous outcomes: {dict(stats.outcomes)}")
        lines.append(f"  errors: {dict(stats.errors)}")
        lines.append(f"  verified {stats.files_verified} file reads, {stats.bytes_verified} bytes")
        return "\n".join(lines)


def _try_resolve(fs: DFSClient, model: Model, amb: Ambiguity) -> bool:
    try:
        return resolve(fs, model, amb)
    except Exception:
        return False


def run_chaos(cluster: MiniCluster, seconds: float) -> None:
    seed = int(os.environ.get("DFS_CHAOS_SEED") or random.randrange(2**32))
    print(f"chaos seed {seed} ({seconds:.0f}s): replay with DFS_CHAOS_SEED={seed}", flush=True)
    run = ChaosRun(cluster, seed, seconds)
    try:
        run.run()
    finally:
        print(run.summary(), flush=True)
    stats = run.model.stats
    assert stats.faults.total() > 0 and stats.acknowledged.total() > 0, f"nothing happened; {run.replay()}"


def chaos_cluster(make_cluster: Callable[..., MiniCluster], backend: str) -> MiniCluster:
    return make_cluster(backend, datanodes=5, racks=2)


@pytest.mark.timeout(DEFAULT_SECONDS + 600)
def test_no_acknowledged_operation_is_lost_under_random_faults(make_cluster: Callable[..., MiniCluster]) -> None:
    """A bounded chaos run: every acknowledged write, rename and delete is in the namespace byte for
    byte at every checkpoint and at the end, a failed call left only an allowed outcome, no read
    returned wrong bytes, nothing hung, and every block is back at its target replication."""
    run_chaos(chaos_cluster(make_cluster, "sqlite"), DEFAULT_SECONDS)


@pytest.mark.slow
@pytest.mark.timeout(SLOW_SECONDS + 900)
@pytest.mark.parametrize("backend", BACKENDS)
def test_long_chaos_soak(make_cluster: Callable[..., MiniCluster], backend: str) -> None:
    """The same promise over a long run (10 minutes by default), on both metadata backends."""
    run_chaos(chaos_cluster(make_cluster, backend), SLOW_SECONDS)


def test_a_copy_refused_by_a_crashed_node_is_retried_when_it_returns(make_cluster: Callable[..., MiniCluster]) -> None:
    """Found by the chaos run: a copy scheduled to a DataNode that had just crashed (not yet stale)
    fails at once, but the NameNode waited out pending_replication_timeout_s (5 minutes) before trying
    again, so blocks stayed under-replicated after the node was back. Its re-registration must free
    the block to be copied again."""
    cluster = make_cluster(datanodes=4, racks=2)
    data = os.urandom(BLOCK // 2)
    with cluster.client() as fs:
        fs.write_bytes("/retry/f", data, block_size=BLOCK, replication=2)
        block = fs.block_locations("/retry/f").blocks[0]
        holders = {node.id for node in block.locations}
        victim = next(n for n in cluster.datanodes if cluster.datanode_info(n)["id"] not in holders)
        victim.kill()
        fs.set_replication("/retry/f", 4)  # both other nodes are targets: the victim is not stale yet
        mark = f"block={block.block.block_id} "

        def copy_to_victim_failed() -> bool:
            """The source logs `replication failed` (victim first) or `ok=False` (victim downstream)."""
            lines = [line for n in cluster.datanodes for line in n.log_path.read_text(errors="replace").splitlines()]
            return any(mark in line and ("replication failed" in line or "ok=False" in line) for line in lines)

        wait_until(copy_to_victim_failed, 30, "the copy to the crashed node to fail")
        victim.start()

        def four_replicas() -> bool:
            return len(fs.block_locations("/retry/f").blocks[0].locations) == 4

        wait_until(four_replicas, 60, "the refused copy to be made again once the node is back")
        assert fs.read_bytes("/retry/f") == data
