"""File commands of the shell, modelled on `hdfs dfs`: ls, mkdir, put, get, cat, rm, mv, stat, setrep, truncate,
append, concat, checksum, du, count, chmod, chown, chgrp."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from client.cli.context import get_context, remote_path
from client.cli.modes import parse_mode
from client.cli.output import human_size, mode_string, print_json, stderr, timestamp
from client.filesystem import COPY_CHUNK
from client.protocol import paths
from client.protocol.client_namenode import FileStatus
from client.protocol.errors import DfsFileNotFoundError, DfsIsADirectoryError, DfsTimeoutError
from client.sync_client import DFSClient

app = typer.Typer()

#: Files at least this big get a progress bar (on a terminal).
PROGRESS_MIN_BYTES = 16 * 1024 * 1024


def _long_line(status: FileStatus) -> str:
    replication = "-" if status.is_dir else str(status.replication)
    return (
        f"{mode_string(status)} {replication:>3} {status.owner:<10} {status.group:<12} "
        f"{status.length:>14} {timestamp(status.mtime)} {status.path}"
    )


@app.command("ls")
def ls(
    ctx: typer.Context,
    targets: Annotated[list[str] | None, typer.Argument(metavar="PATH...", help="Paths to list (default /).")] = None,
    long: Annotated[bool, typer.Option("-l", help="Long format: mode, replication, owner, size, time.")] = False,
    recursive: Annotated[bool, typer.Option("-R", help="List subdirectories recursively.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print entries as JSON.")] = False,
) -> None:
    """List directories (or show files)."""
    with get_context(ctx).client() as fs:
        entries: list[FileStatus] = []
        for target in targets or ["/"]:
            path = remote_path(target)
            entries.extend(fs.walk(path) if recursive else fs.list(path))
    if as_json:
        print_json(entries)
        return
    for entry in entries:
        print(_long_line(entry) if long else entry.path)


@app.command("mkdir")
def mkdir(
    ctx: typer.Context,
    targets: Annotated[list[str], typer.Argument(metavar="PATH...")],
    parents: Annotated[bool, typer.Option("-p", help="Create missing parents; no error if it exists.")] = False,
) -> None:
    """Create directories."""
    with get_context(ctx).client() as fs:
        for target in targets:
            fs.mkdirs(remote_path(target), parents=parents)


@contextmanager
def _progress(total: int, label: str) -> Iterator[Progress | None]:
    if total < PROGRESS_MIN_BYTES or not sys.stderr.isatty():
        yield None
        return
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=stderr,
        transient=True,
    ) as progress:
        progress.add_task(label, total=total)
        yield progress


def _advance(progress: Progress | None) -> Callable[[int], None] | None:
    if progress is None:
        return None
    task = progress.task_ids[0]
    return lambda n: progress.advance(task, n)


def _put_one(
    fs: DFSClient, local: Path, remote: str, overwrite: bool, replication: int | None, block_size: int | None
) -> None:
    if local.is_dir():
        fs.mkdirs(remote)
        for child in sorted(local.iterdir()):
            _put_one(fs, child, paths.join(remote, child.name), overwrite, replication, block_size)
        return
    with _progress(local.stat().st_size, f"put {local.name}") as progress:
        fs.put(
            local,
            remote,
            overwrite=overwrite,
            replication=replication,
            block_size=block_size,
            progress=_advance(progress),
        )


@app.command("put")
def put(
    ctx: typer.Context,
    items: Annotated[list[str], typer.Argument(metavar="LOCAL... REMOTE")],
    force: Annotated[bool, typer.Option("-f", help="Overwrite existing files.")] = False,
    replication: Annotated[int | None, typer.Option("--replication", "-r", help="Replicas per block.")] = None,
    block_size: Annotated[int | None, typer.Option("--block-size", help="Block size in bytes.")] = None,
) -> None:
    """Upload local files or directories. REMOTE is a directory if it exists as one or several LOCALs are given."""
    with get_context(ctx).client() as fs:
        sources, destination, into_dir = _sources_and_destination(fs, items, "put")
        for source in sources:
            local = Path(source)
            if not local.exists():
                raise FileNotFoundError(f"{source}: no such local file or directory")
            remote = paths.join(destination, local.resolve().name) if into_dir else destination
            _put_one(fs, local, remote, force, replication, block_size)


def _sources_and_destination(fs: DFSClient, items: list[str], command: str) -> tuple[list[str], str, bool]:
    """SOURCE... DEST as `cp` reads it: DEST is a directory to go into if it is one or several sources are given."""
    if len(items) < 2:
        raise typer.BadParameter(f"{command} needs at least one source and a destination")
    *sources, target = items
    destination = remote_path(target)
    # A trailing slash says "a directory", as with cp: put x /new/ makes /new/x.
    return sources, destination, len(sources) > 1 or target.endswith("/") or _is_dir(fs, destination)


def _is_dir(fs: DFSClient, path: str) -> bool:
    try:
        return fs.status(path).is_dir
    except DfsFileNotFoundError:
        return False


def _get_one(fs: DFSClient, status: FileStatus, local: Path) -> None:
    if status.is_dir:
        local.mkdir(parents=True, exist_ok=True)
        for child in fs.list(status.path):
            _get_one(fs, child, local / child.name)
        return
    partial = local.with_name(f".{local.name}.dfs-partial")
    with _progress(status.length, f"get {status.name}") as progress:
        try:
            fs.get(status.path, partial, progress=_advance(progress))
            partial.replace(local)
        finally:
            partial.unlink(missing_ok=True)


@app.command("get")
def get(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(metavar="REMOTE")],
    target: Annotated[str, typer.Argument(metavar="LOCAL")] = ".",
) -> None:
    """Download a file or directory. LOCAL may be an existing directory."""
    with get_context(ctx).client() as fs:
        status = fs.status(remote_path(source))
        local = Path(target)
        if local.is_dir():
            local = local / (status.name or "root")
        _get_one(fs, status, local)


@app.command("cat")
def cat(ctx: typer.Context, targets: Annotated[list[str], typer.Argument(metavar="PATH...")]) -> None:
    """Write files to standard output."""
    out = sys.stdout.buffer
    with get_context(ctx).client() as fs:
        try:
            for target in targets:
                fs.get(remote_path(target), out)
            out.flush()
        except BrokenPipeError:
            # The reader went away (`dfs cat f | head`): stop quietly, as cat(1) does.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(141) from None


@app.command("rm")
def rm(
    ctx: typer.Context,
    targets: Annotated[list[str], typer.Argument(metavar="PATH...")],
    recursive: Annotated[bool, typer.Option("-r", "-R", help="Delete directories and their contents.")] = False,
    force: Annotated[bool, typer.Option("-f", help="No error if a path does not exist.")] = False,
) -> None:
    """Delete files and directories."""
    with get_context(ctx).client() as fs:
        for target in targets:
            path = remote_path(target)
            try:
                if not recursive and fs.status(path).is_dir:
                    raise DfsIsADirectoryError(f"{path} is a directory (use -r to delete it)", path=path)
                fs.delete(path, recursive=recursive)
            except DfsFileNotFoundError:
                if not force:
                    raise


@app.command("mv")
def mv(ctx: typer.Context, items: Annotated[list[str], typer.Argument(metavar="SRC... DST")]) -> None:
    """Move (rename) files or directories; into DST if it is an existing directory."""
    with get_context(ctx).client() as fs:
        sources, destination, into_dir = _sources_and_destination(fs, items, "mv")
        for source in sources:
            src = remote_path(source)
            fs.rename(src, paths.join(destination, paths.basename(src)) if into_dir else destination)


@app.command("stat")
def stat(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(metavar="PATH")],
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Show a file's or directory's metadata."""
    with get_context(ctx).client() as fs:
        status = fs.status(remote_path(target))
    if as_json:
        print_json(status)
        return
    rows = [
        ("path", status.path),
        ("type", status.type.value),
        ("size", f"{status.length} ({human_size(status.length)})"),
        ("mode", f"{mode_string(status)} ({status.mode:04o})"),
        ("owner", status.owner),
        ("group", status.group),
        ("modified", timestamp(status.mtime)),
    ]
    if not status.is_dir:
        rows += [
            ("replication", str(status.replication)),
            ("block size", f"{status.block_size} ({human_size(status.block_size)})"),
            ("under construction", "yes" if status.under_construction else "no"),
        ]
    for name, value in rows:
        print(f"{name + ':':<20}{value}")


@app.command("setrep")
def setrep(
    ctx: typer.Context,
    replication: Annotated[int, typer.Argument(metavar="N", min=1)],
    target: Annotated[str, typer.Argument(metavar="PATH")],
    wait: Annotated[bool, typer.Option("-w", help="Wait until every block has N replicas.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with -w.")] = 600.0,
) -> None:
    """Change the replication factor of a file, or of every file under a directory."""
    with get_context(ctx).client() as fs:
        root = fs.status(remote_path(target))
        files = [e.path for e in fs.walk(root.path) if not e.is_dir] if root.is_dir else [root.path]
        for path in files:
            fs.set_replication(path, replication)
            print(f"Replication {replication} set: {path}")
        if wait:
            for path in files:
                _wait_for_replication(fs, path, replication, timeout)


def _wait_for_replication(fs: DFSClient, path: str, replication: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        located = fs.block_locations(path)
        if all(len(block.locations) == replication for block in located.blocks):
            return
        if time.monotonic() > deadline:
            raise DfsTimeoutError(f"{path} did not reach replication {replication} within {timeout:.0f}s")
        time.sleep(0.5)


@app.command("truncate")
def truncate(
    ctx: typer.Context,
    length: Annotated[int, typer.Argument(metavar="LENGTH", min=0, help="New length in bytes.")],
    targets: Annotated[list[str], typer.Argument(metavar="PATH...")],
    wait: Annotated[bool, typer.Option("-w", help="Wait until the last block is cut and the file closed.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with -w, per file.")] = 60.0,
) -> None:
    """Cut files to LENGTH bytes (like `hdfs dfs -truncate`)."""
    with get_context(ctx).client() as fs:
        for target in targets:
            path = remote_path(target)
            if fs.truncate(path, length, wait=wait, timeout=timeout):
                print(f"Truncated {path} to length: {length}")
            else:
                print(
                    f"Truncating {path} to length: {length}. "
                    "Wait for block recovery to complete before further updating this file."
                )


@app.command("append")
def append(
    ctx: typer.Context,
    items: Annotated[list[str], typer.Argument(metavar="LOCAL... DST", help="Local files ('-' for stdin), then DST.")],
) -> None:
    """Append local files (or standard input) to the end of an existing file (`hdfs dfs -appendToFile`)."""
    if len(items) < 2:
        raise typer.BadParameter("give at least one local source and the destination")
    *sources, destination = items
    with get_context(ctx).client() as fs, fs.append(remote_path(destination)) as out:
        for source in sources:
            with contextlib.nullcontext(sys.stdin.buffer) if source == "-" else Path(source).open("rb") as handle:
                while chunk := handle.read(COPY_CHUNK):
                    out.write(chunk)


@app.command("concat")
def concat(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(metavar="TARGET")],
    sources: Annotated[list[str], typer.Argument(metavar="SRC...")],
) -> None:
    """Move the blocks of SRC files, in order, to the end of TARGET and remove them (no data is copied)."""
    with get_context(ctx).client() as fs:
        status = fs.concat(remote_path(target), [remote_path(source) for source in sources])
    print(f"{status.path}: {status.length} bytes")


@app.command("checksum")
def checksum(
    ctx: typer.Context,
    targets: Annotated[list[str], typer.Argument(metavar="PATH...")],
) -> None:
    """Print files' checksums in Hadoop's format (`hdfs dfs -checksum`): equal for equal bytes and block size."""
    with get_context(ctx).client() as fs:
        for target in targets:
            path = remote_path(target)
            result = fs.file_checksum(path)
            print(f"{path}\t{result.algorithm}\t{result.raw.hex()}")


@app.command("du")
def du(
    ctx: typer.Context,
    targets: Annotated[list[str] | None, typer.Argument(metavar="PATH...", help="Default /.")] = None,
    summary: Annotated[bool, typer.Option("-s", help="One total per PATH instead of one line per entry.")] = False,
    human: Annotated[bool, typer.Option("-h", help="Sizes as KiB/MiB/GiB.")] = False,
) -> None:
    """Bytes used under paths: length, and space consumed with replication (`hdfs dfs -du`)."""

    def size(value: int) -> str:
        return human_size(value) if human else str(value)

    with get_context(ctx).client() as fs:
        for target in targets or ["/"]:
            path = remote_path(target)
            status = fs.status(path)
            entries = [path] if summary or not status.is_dir else [entry.path for entry in fs.list(path)]
            for entry in entries:
                total = fs.content_summary(entry)
                print(f"{size(total.length):>14}  {size(total.space_consumed):>14}  {entry}")


@app.command("count")
def count(
    ctx: typer.Context,
    targets: Annotated[list[str], typer.Argument(metavar="PATH...")],
) -> None:
    """Directories, files and bytes under paths (`hdfs dfs -count`)."""
    with get_context(ctx).client() as fs:
        for target in targets:
            path = remote_path(target)
            total = fs.content_summary(path)
            print(f"{total.directories:>12} {total.files:>12} {total.length:>18} {path}")


@app.command("chmod")
def chmod(
    ctx: typer.Context,
    mode: Annotated[str, typer.Argument(metavar="MODE", help="Octal (755, 1777) or symbolic (u+x,go-w, a+rX, +t).")],
    targets: Annotated[list[str], typer.Argument(metavar="PATH...")],
    recursive: Annotated[bool, typer.Option("-R", help="Also everything under directories.")] = False,
) -> None:
    """Change permission bits (the owner's or the superuser's to change)."""
    try:
        change = parse_mode(mode)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    with get_context(ctx).client() as fs:
        for status in _target_statuses(fs, targets, recursive):
            fs.set_permission(status.path, change(status.mode, status.is_dir))


@app.command("chown")
def chown(
    ctx: typer.Context,
    owner: Annotated[str, typer.Argument(metavar="OWNER[:GROUP]", help="Owner, ':GROUP', or both.")],
    targets: Annotated[list[str], typer.Argument(metavar="PATH...")],
    recursive: Annotated[bool, typer.Option("-R", help="Also everything under directories.")] = False,
) -> None:
    """Change owner and/or group (giving a file to another owner takes the superuser)."""
    user, _, group = owner.partition(":")
    if not user and not group:
        raise typer.BadParameter("give an owner, :group, or owner:group")
    with get_context(ctx).client() as fs:
        for path in _targets(fs, targets, recursive):
            fs.set_owner(path, user or None, group or None)


@app.command("chgrp")
def chgrp(
    ctx: typer.Context,
    group: Annotated[str, typer.Argument(metavar="GROUP")],
    targets: Annotated[list[str], typer.Argument(metavar="PATH...")],
    recursive: Annotated[bool, typer.Option("-R", help="Also everything under directories.")] = False,
) -> None:
    """Change the group (the owner may choose a group they are in; the superuser any)."""
    if not group:
        raise typer.BadParameter("give a group")
    with get_context(ctx).client() as fs:
        for path in _targets(fs, targets, recursive):
            fs.set_owner(path, None, group)


def _target_statuses(fs: DFSClient, targets: list[str], recursive: bool) -> Iterator[FileStatus]:
    for target in targets:
        status = fs.status(remote_path(target))
        yield status
        if recursive and status.is_dir:
            yield from fs.walk(status.path)


def _targets(fs: DFSClient, targets: list[str], recursive: bool) -> Iterator[str]:
    for target in targets:
        path = remote_path(target)
        yield path
        if recursive and fs.status(path).is_dir:
            yield from (entry.path for entry in fs.walk(path))
