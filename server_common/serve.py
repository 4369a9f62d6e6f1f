"""Serving a FastAPI app with uvicorn on a socket bound before the app exists.

Binding first lets a server started on port 0 know its real port (a DataNode must
advertise it) and lets supervisors learn it from `port_file`, written only once the
app's start-up has finished, so "the file exists" means "ready for requests".
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path

import uvicorn
import uvloop
from fastapi import FastAPI

from client.memory import tune_allocator


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def base_url(host: str, port: int, *, tls: bool = False) -> str:
    shown = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in shown:
        shown = f"[{shown}]"
    return f"{'https' if tls else 'http'}://{shown}:{port}"


def advertised_url(host: str, port: int, *, tls: bool = False) -> str:
    """What a server tells others when no advertise URL is configured: a wildcard bind advertises
    the host name (others cannot reach this machine at 127.0.0.1)."""
    if host in ("0.0.0.0", "::", ""):
        return f"{'https' if tls else 'http'}://{socket.getfqdn()}:{port}"
    return base_url(host, port, tls=tls)


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def watch_parent(interval: float = 1.0) -> None:
    """SIGTERM ourselves (a clean shutdown) once the process that started us is gone.

    Enabled by DFS_EXIT_WITH_PARENT=1, which `dfs cluster up` and the test MiniCluster set,
    so a supervisor killed with kill -9 leaves no servers behind. Polling getppid() is used
    because PR_SET_PDEATHSIG is not honoured in every sandbox.
    """
    parent = os.getppid()

    def loop() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=loop, name="parent-watch", daemon=True).start()


def run_app(
    make_app: Callable[[int], FastAPI],
    *,
    host: str,
    port: int,
    port_file: Path | None = None,
    on_ready: Callable[[str], None] | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> None:
    """Bind, build the app for the bound port, serve until SIGINT/SIGTERM (over TLS with
    `ssl_context`, from server_common.tls, which then serves https only)."""
    tune_allocator()
    if os.environ.get("DFS_EXIT_WITH_PARENT") == "1":
        watch_parent()
    sock = bind_socket(host, port)
    bound_port = sock.getsockname()[1]
    app = make_app(bound_port)
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        http="httptools",
        loop="uvloop",
        lifespan="on",
        timeout_keep_alive=30,
        timeout_graceful_shutdown=5,
        ssl_context_factory=None if ssl_context is None else lambda _config, _default: ssl_context,
    )
    server = uvicorn.Server(config)
    url = base_url(host, bound_port, tls=ssl_context is not None)

    async def main() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn has no started event
            await asyncio.sleep(0.01)
        if server.started:
            if port_file is not None:
                write_atomically(port_file, url + "\n")
            if on_ready is not None:
                on_ready(url)
        await task

    uvloop.run(main())
    if port_file is not None and not server.started:
        raise SystemExit(1)
