"""Request-scoped dependencies of the NameNode routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from client.protocol.common import HEADER_USER
from namenode.service import NameNode

DEFAULT_USER = "anonymous"


def get_namenode(request: Request) -> NameNode:
    namenode: NameNode = request.app.state.namenode
    return namenode


def get_user(user: Annotated[str | None, Header(alias=HEADER_USER, max_length=256)] = None) -> str:
    """The caller's user name ("simple" authentication, as HDFS: the client states it)."""
    return user or DEFAULT_USER


NameNodeDep = Annotated[NameNode, Depends(get_namenode)]
UserDep = Annotated[str, Depends(get_user)]
