"""The `dfs` command: file commands, administration, and the servers."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from client.cli import admin, cluster, files, health, mount, tls, tokens
from client.cli.context import CliContext
from client.cli.output import error
from client.memory import tune_allocator
from client.protocol.errors import DfsError
from client.request_id import request_id

app = typer.Typer(
    name="dfs",
    help="Shell for the distributed file system (modelled on `hdfs dfs`).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.registered_commands += (
    files.app.registered_commands
    + admin.app.registered_commands
    + health.app.registered_commands
    + mount.app.registered_commands
)
app.registered_groups += health.app.registered_groups
app.add_typer(cluster.app, name="cluster")
app.add_typer(tokens.app, name="token")
app.add_typer(tls.app, name="tls")


@app.callback()
def _global_options(
    ctx: typer.Context,
    namenode: Annotated[
        str | None, typer.Option(envvar="DFS_NAMENODE", help="NameNode URL (default http://127.0.0.1:9870).")
    ] = None,
    user: Annotated[str | None, typer.Option(envvar="DFS_USER", help="Act as this user (default: OS user).")] = None,
    retry_wait: Annotated[
        float,
        typer.Option(envvar="DFS_RETRY_WAIT", min=0, help="Seconds to wait out a NameNode's start-up safe mode."),
    ] = 30.0,
    ca_file: Annotated[
        Path | None,
        typer.Option(envvar="DFS_CA_FILE", show_envvar=True, help="CA bundle (PEM) to verify https servers against."),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="DFS_TOKEN", show_envvar=True, help="User token from `dfs token create` (or $DFS_TOKEN_FILE)."
        ),
    ] = None,
) -> None:
    ctx.obj = CliContext(namenode=namenode, user=user, retry_wait=retry_wait, token=token)
    ctx.obj.ca_file = ca_file
    if ctx.invoked_subcommand not in _LONG_RUNNING:
        # One request id for the whole command, so its calls can be found in every server's log.
        ctx.with_resource(request_id())


#: Commands that are servers or serve many operations: no single request id fits them.
_LONG_RUNNING = {"namenode", "datanode", "cluster", "mount", "umount"}


_PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


@app.command("namenode", context_settings=_PASS_THROUGH, add_help_option=False)
def namenode(ctx: typer.Context) -> None:
    """Run a NameNode, or `format` / `upgrade` its database (all options: dfs namenode --help)."""
    _exec_server("namenode", ctx.args)


@app.command("datanode", context_settings=_PASS_THROUGH, add_help_option=False)
def datanode(ctx: typer.Context) -> None:
    """Run a DataNode (all options: dfs datanode --help)."""
    _exec_server("datanode", ctx.args)


def _exec_server(module: str, args: list[str]) -> None:
    # Replace this process, so signals and exit codes belong to the server itself.
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, "-m", module, *args])


def main() -> None:
    """Entry point: one clear line and a non-zero exit on any error, never a traceback.

    Usage errors are reported by the command-line parser itself (exit code 2).
    """
    tune_allocator()
    # SDK warnings (a replica failed over, a pipeline node lost) go to stderr, never into `cat` output.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="dfs: warning: %(message)s")
    try:
        app(prog_name="dfs")
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(141)
    except DfsError as exc:
        error(str(exc))
        sys.exit(1)
    except OSError as exc:
        error(f"{exc.strerror}: {exc.filename}" if exc.strerror and exc.filename else str(exc))
        sys.exit(1)
    except (ValueError, TimeoutError, RuntimeError) as exc:
        error(str(exc))
        sys.exit(1)
