"""Ordinary programs on a real mount: cp, diff, rsync, tar, mv, rm, dd, sha256sum, head, tail,
truncate and shell appends, each checked against the same work on a local directory."""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.minicluster import MiniCluster
from tests.mounts import Mount

pytestmark = pytest.mark.cluster

MIB = 1024 * 1024
#: File sizes of the generated tree: empty, tiny, around a page, around a packet, a few MiB, 64 MiB.
TREE_FILES = {
    "empty": 0,
    "one byte": 1,
    "page-1": 4095,
    "page": 4096,
    "sub dir/packet+1": MIB + 1,
    "sub dir/ünïcødé 名前.bin": 65_537,
    "sub dir/deeper/still/five.bin": 5 * MIB + 3,
    "big/sixty-four.bin": 64 * MIB,
}


def run(*command: str | Path, cwd: Path | None = None) -> str:
    """Run a program; its output, or a failed assertion with its stderr."""
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, cwd=cwd, timeout=240)
    assert result.returncode == 0, f"{command[0]} exited {result.returncode}: {result.stderr.strip()}"
    return result.stdout


def sha256(path: Path) -> str:
    return run("sha256sum", path).split()[0]


def evict(path: Path) -> None:
    """Drop a file's pages from the kernel's cache, so the next read goes to the DataNodes."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


@pytest.fixture(scope="session")
def source_tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A local tree of files from 0 B to 64 MiB with nested directories and awkward names."""
    root = tmp_path_factory.mktemp("source") / "tree"
    for name, size in TREE_FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
    (root / "empty dir").mkdir()
    os.utime(root / "page", ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    yield root


def test_cp_r_then_diff_r(source_tree: Path, mdir: Path) -> None:
    run("cp", "-r", source_tree, mdir / "copy")
    run("diff", "-r", source_tree, mdir / "copy")
    assert (mdir / "copy" / "empty dir").is_dir()


def test_rsync_twice_copies_nothing_the_second_time(source_tree: Path, mdir: Path) -> None:
    run("rsync", "-a", f"{source_tree}/", f"{mdir}/synced/")
    second = run("rsync", "-a", "--itemize-changes", "--stats", f"{source_tree}/", f"{mdir}/synced/")
    assert "Number of regular files transferred: 0" in second, second
    run("diff", "-r", source_tree, mdir / "synced")
    # rsync -a kept modes and times, so the second run found nothing to send.
    assert (mdir / "synced" / "page").stat().st_mtime_ns == (source_tree / "page").stat().st_mtime_ns


def test_tar_extracts_into_and_archives_out_of_the_mount(source_tree: Path, mdir: Path, tmp_path: Path) -> None:
    archive = tmp_path / "in.tar"
    run("tar", "-cf", archive, "-C", source_tree.parent, source_tree.name)
    run("tar", "-xf", archive, "-C", mdir)
    run("diff", "-r", source_tree, mdir / source_tree.name)
    for name in TREE_FILES:
        extracted, original = mdir / source_tree.name / name, source_tree / name
        assert int(extracted.stat().st_mtime) == int(original.stat().st_mtime), name  # tar -x sets mtime only

    out = tmp_path / "out.tar"
    run("tar", "-cf", out, "-C", mdir, source_tree.name)
    (tmp_path / "back").mkdir()
    run("tar", "-xf", out, "-C", tmp_path / "back")
    run("diff", "-r", source_tree, tmp_path / "back" / source_tree.name)


def test_mv_and_rm_r(mdir: Path) -> None:
    (mdir / "a" / "b").mkdir(parents=True)
    (mdir / "a" / "b" / "f").write_bytes(b"payload")
    run("mv", mdir / "a" / "b" / "f", mdir / "a" / "g")
    assert (mdir / "a" / "g").read_bytes() == b"payload"
    assert not (mdir / "a" / "b" / "f").exists()
    run("mv", mdir / "a", mdir / "renamed dir")
    assert (mdir / "renamed dir" / "g").read_bytes() == b"payload"
    assert sorted(os.listdir(mdir)) == ["renamed dir"]
    run("rm", "-r", mdir / "renamed dir")
    assert os.listdir(mdir) == []


def test_dd_256_mib_with_bs_1m_reads_back_identical(
    mdir: Path, tmp_path: Path, cluster: MiniCluster, mount: Mount
) -> None:
    source = tmp_path / "source.bin"
    with source.open("wb") as out:
        for _ in range(256):
            out.write(os.urandom(MIB))
    target = mdir / "dd.bin"
    run("dd", f"if={source}", f"of={target}", "bs=1M", "conv=fsync", "status=none")
    assert target.stat().st_size == 256 * MIB
    evict(target)
    assert sha256(target) == sha256(source)
    with cluster.client() as fs:
        status = fs.status(mount.remote(target))
    assert status.length == 256 * MIB and not status.under_construction


def test_four_concurrent_readers_of_one_big_file(mdir: Path, cluster: MiniCluster, mount: Mount) -> None:
    data = os.urandom(48 * MIB)
    expected = hashlib.sha256(data).hexdigest()
    with cluster.client() as fs:
        fs.write_bytes(mount.remote(mdir / "shared.bin"), data, block_size=16 * MIB)  # cold for the mount
    results: list[str] = []

    def reader() -> None:
        results.append(sha256(mdir / "shared.bin"))

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert results == [expected] * 4


def test_head_tail_and_dd_skip_read_exact_ranges(source_tree: Path, mdir: Path) -> None:
    original = source_tree / "sub dir" / "deeper" / "still" / "five.bin"
    run("cp", original, mdir / "five.bin")
    evict(mdir / "five.bin")
    data = original.read_bytes()
    head = subprocess.run(["head", "-c", "1000", mdir / "five.bin"], capture_output=True, check=True).stdout
    tail = subprocess.run(["tail", "-c", "777", mdir / "five.bin"], capture_output=True, check=True).stdout
    middle = subprocess.run(
        ["dd", f"if={mdir / 'five.bin'}", "bs=4096", "skip=300", "count=3", "status=none"],
        capture_output=True,
        check=True,
    ).stdout
    assert head == data[:1000]
    assert tail == data[-777:]
    assert middle == data[300 * 4096 : 303 * 4096]


def test_truncate_and_shell_append_match_a_local_directory(mdir: Path, tmp_path: Path) -> None:
    script = """
        set -e
        head -c 300000 /dev/zero | tr '\\0' 'a' > f
        truncate -s 1000 f
        truncate -s 70000 f
        echo appended >> f
        echo again >> f
        : > emptied
        echo x > emptied
        truncate -s 0 emptied
        printf 'new' >> emptied
    """
    local = tmp_path / "local"
    local.mkdir()
    for place in (local, mdir):
        subprocess.run(["sh", "-c", script], cwd=place, check=True, timeout=120)
    run("diff", "-r", local, mdir)
    assert (mdir / "f").stat().st_size == 70000 + len("appended\nagain\n")
