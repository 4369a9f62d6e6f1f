"""Request-scoped dependencies of the NameNode routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from client.protocol.common import HEADER_USER
from namenode.service import NameNode


async def get_namenode(request: Request) -> NameNode:
    """async, though it awaits nothing: FastAPI runs a plain `def` dependency in a worker thread,
    one thread hand-off per request for a dictionary lookup."""
    namenode: NameNode = request.app.state.namenode
    return namenode


async def get_user(
    request: Request,
    namenode: Annotated[NameNode, Depends(get_namenode)],
    user: Annotated[str | None, Header(alias=HEADER_USER, max_length=256)] = None,
) -> str:
    """The authenticated caller (namenode.auth): a token's user, the superuser for a cluster-signed
    request, or in simple mode the user the `X-DFS-User` header states (HDFS's simple auth)."""
    del user  # declared for the API schema; namenode.auth reads the header itself
    return await namenode.auth.caller(request)


async def require_cluster_secret(request: Request, namenode: Annotated[NameNode, Depends(get_namenode)]) -> None:
    """Only processes holding the cluster secret (DataNodes) may use the DataNode protocol."""
    await namenode.auth.verify_cluster_request(request)


NameNodeDep = Annotated[NameNode, Depends(get_namenode)]
UserDep = Annotated[str, Depends(get_user)]
