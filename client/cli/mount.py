"""`dfs mount` and `dfs umount`: the cluster as a local file system (FUSE, in fuse_mount/)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from client.cli.context import get_context
from client.cli.output import error, stderr

app = typer.Typer()

MOUNT_TIMEOUT_S = 60.0


def _default_log(mountpoint: Path) -> Path:
    name = "".join(ch if ch.isalnum() else "_" for ch in str(mountpoint.resolve()))[-80:]
    return Path(tempfile.gettempdir()) / f"dfs-mount-{os.getuid()}{name}.log"


@app.command("mount")
def mount(
    ctx: typer.Context,
    mountpoint: Annotated[Path, typer.Argument(help="An existing, empty directory.")],
    namenode: Annotated[str | None, typer.Option(help="NameNode URL (default: the global --namenode).")] = None,
    foreground: Annotated[
        bool, typer.Option("--foreground", "-f", help="Serve in this process, log to stderr.")
    ] = False,
    allow_other: Annotated[
        bool, typer.Option(help="Let other local users use the mount, each acting as their own user.")
    ] = False,
    read_only: Annotated[bool, typer.Option("--read-only", help="Refuse every change with EROFS.")] = False,
    cache_ttl: Annotated[
        float, typer.Option(min=0, help="Seconds metadata is cached (others' changes show after this).")
    ] = 1.0,
    spool_dir: Annotated[
        Path | None, typer.Option(help="Local directory for files rewritten in place (default: the temp dir).")
    ] = None,
    readahead_kib: Annotated[int, typer.Option(min=0, help="Kernel readahead for the mount, KiB (0: leave).")] = 4096,
    log_file: Annotated[Path | None, typer.Option(help="Where a background mount logs.")] = None,
    debug: Annotated[bool, typer.Option(help="Log every FUSE request (implies --foreground).")] = False,
) -> None:
    """Mount the namespace at MOUNTPOINT; returns once it is mounted (unless --foreground)."""
    from fuse_mount.mount import MountError, MountOptions, check_can_mount, run_mount, wait_until_mounted

    context = get_context(ctx)
    try:
        check_can_mount(mountpoint)
        if foreground or debug:
            logging.basicConfig(
                level=logging.DEBUG if debug else logging.INFO,
                stream=sys.stderr,
                force=True,
                format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            )
            logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
            options = MountOptions(
                namenode=namenode or context.namenode,
                user=context.user,
                token=context.token,
                ca_file=context.ca_file,
                read_only=read_only,
                allow_other=allow_other,
                cache_ttl=cache_ttl,
                spool_dir=spool_dir,
                readahead_kib=readahead_kib,
                retry_wait=context.retry_wait,
                debug=debug,
            )
            run_mount(mountpoint, options)
            return
        log_path = log_file or _default_log(mountpoint)
        command = [sys.executable, "-m", "client.cli", "--retry-wait", str(context.retry_wait)]
        if namenode or context.namenode:
            command += ["--namenode", namenode or context.namenode or ""]
        if context.user:
            command += ["--user", context.user]
        if context.ca_file:
            command += ["--ca-file", str(context.ca_file.resolve())]
        command += ["mount", str(mountpoint.resolve()), "--foreground", "--cache-ttl", str(cache_ttl)]
        command += ["--readahead-kib", str(readahead_kib)]
        command += ["--allow-other"] * allow_other + ["--read-only"] * read_only
        if spool_dir is not None:
            command += ["--spool-dir", str(spool_dir)]
        with log_path.open("ab") as log:
            # A token goes by environment, not argv, which any local user can read in `ps`.
            env = {**os.environ, **({"DFS_TOKEN": context.token} if context.token else {})}
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, env=env
            )
        try:
            wait_until_mounted(mountpoint, process, MOUNT_TIMEOUT_S)
        except MountError as exc:
            if process.poll() is None:
                process.kill()
            tail = _last_error(log_path)
            raise MountError(f"{tail or exc} (log: {log_path})") from None
        stderr.print(f"mounted at {mountpoint} (pid {process.pid}, log: {log_path})", markup=False, soft_wrap=True)
    except MountError as exc:
        raise _fail(str(exc)) from None


@app.command("umount")
def umount(
    mountpoint: Annotated[Path, typer.Argument(help="Where the namespace is mounted.")],
    lazy: Annotated[bool, typer.Option("--lazy", "-z", help="Detach now, finish when files are closed.")] = False,
) -> None:
    """Unmount a dfs mount (open files are synced by the mount before it exits)."""
    from fuse_mount.mount import MountError, unmount

    try:
        unmount(mountpoint, lazy=lazy)
    except MountError as exc:
        raise _fail(str(exc)) from None


def _fail(message: str) -> typer.Exit:
    error(message)
    return typer.Exit(1)


def _last_error(log_path: Path) -> str:
    """The mount process's last meaningful log line (what went wrong, for the user)."""
    try:
        lines = [line.strip() for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1].removeprefix("dfs: ") if lines else ""
