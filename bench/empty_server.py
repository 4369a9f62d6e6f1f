"""The ceiling of our HTTP stack: the servers' FastAPI + uvicorn (httptools, uvloop) set-up, serving
routes that do nothing, so a benchmark can put a NameNode route beside the most any route could do.

    python -m bench.empty_server --port 0 --port-file FILE [--blob-dir DIR]

GET /empty answers `{}`; POST /empty reads a small JSON body and answers `{}` (a create's shape).
With `--blob-dir`, PUT /blob/NAME stores the request body in DIR/NAME (written as it arrives, then
fsync'd) and GET /blob/NAME streams it back in 1 MiB reads: the most a DataNode route could do with
no checksums, no packets and no pipeline. Started by bench/metadata.py and bench/throughput.py
through client.local_cluster.NodeProcess, like the real servers.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from server_common.serve import run_app


class Body(BaseModel):
    path: str
    client_name: str = ""


CHUNK = 1024 * 1024


def make_app(_port: int, blob_dir: Path | None = None) -> FastAPI:
    app = FastAPI()

    @app.get("/empty")
    async def get_empty(path: str = "") -> dict[str, Any]:
        return {}

    @app.post("/empty")
    async def post_empty(body: Body) -> dict[str, Any]:
        return {}

    if blob_dir is not None:
        add_blob_routes(app, blob_dir)
    return app


def add_blob_routes(app: FastAPI, blob_dir: Path) -> None:
    def blob(name: str) -> Path:
        if "/" in name or name.startswith("."):
            raise HTTPException(400, "bad blob name")
        return blob_dir / name

    @app.put("/blob/{name}")
    async def put_blob(name: str, request: Request) -> dict[str, int]:
        fd = os.open(blob(name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        written = 0
        try:
            async for piece in request.stream():
                written += os.write(fd, piece)
            os.fsync(fd)
        finally:
            os.close(fd)
        return {"written": written}

    @app.get("/blob/{name}")
    async def get_blob(name: str) -> StreamingResponse:
        path = blob(name)
        if not path.is_file():
            raise HTTPException(404, "no such blob")

        async def pieces() -> AsyncIterator[bytes]:  # inline reads: no thread hop per chunk
            with path.open("rb", buffering=0) as handle:
                while piece := handle.read(CHUNK):
                    yield piece

        return StreamingResponse(pieces(), media_type="application/octet-stream")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", type=Path, default=None)
    parser.add_argument("--blob-dir", type=Path, default=None)
    args = parser.parse_args()
    run_app(partial(make_app, blob_dir=args.blob_dir), host=args.host, port=args.port, port_file=args.port_file)


if __name__ == "__main__":
    main()
