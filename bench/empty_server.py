"""The ceiling of our HTTP stack: the servers' FastAPI + uvicorn (httptools, uvloop) set-up, serving
routes that do nothing, so a benchmark can put a NameNode route beside the most any route could do.

    python -m bench.empty_server --port 0 --port-file FILE

GET /empty answers `{}`; POST /empty reads a small JSON body and answers `{}` (a create's shape).
Started by bench/metadata.py through client.local_cluster.NodeProcess, like the real servers.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from server_common.serve import run_app


class Body(BaseModel):
    path: str
    client_name: str = ""


def make_app(_port: int) -> FastAPI:
    app = FastAPI()

    @app.get("/empty")
    async def get_empty(path: str = "") -> dict[str, Any]:
        return {}

    @app.post("/empty")
    async def post_empty(body: Body) -> dict[str, Any]:
        return {}

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", type=Path, default=None)
    args = parser.parse_args()
    run_app(make_app, host=args.host, port=args.port, port_file=args.port_file)


if __name__ == "__main__":
    main()
