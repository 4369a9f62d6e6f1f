"""HTTP binding of user (delegation) tokens: issue, list, revoke (models in client.protocol.security)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from client.protocol.errors import DfsPermissionError
from client.protocol.security import CreateTokenRequest, IssuedToken, TokenId, TokenInfo, TokenList, TokenRoutes
from namenode.api.deps import NameNodeDep, UserDep
from server_common.openapi import error_responses

router = APIRouter(tags=["tokens"], responses=error_responses(401, 403, 404))


@router.post(TokenRoutes.TOKENS)
async def create_token(request: CreateTokenRequest, namenode: NameNodeDep, caller: UserDep) -> IssuedToken:
    """A token for the caller, or for anyone when the caller is the superuser."""
    user = request.user or caller
    if user != caller and not namenode.is_superuser(caller):
        raise DfsPermissionError(f"Permission denied: user={caller} may not issue tokens for {user}")
    return await namenode.user_tokens.issue(user, caller, request.ttl_s, request.description)


@router.get(TokenRoutes.TOKENS)
async def list_tokens(namenode: NameNodeDep, caller: UserDep) -> TokenList:
    """Unexpired tokens: all of them for the superuser, else the caller's own."""
    owner = None if namenode.is_superuser(caller) else caller
    return TokenList(tokens=await namenode.user_tokens.unexpired(owner))


@router.delete(TokenRoutes.TOKEN)
async def revoke_token(token_id: Annotated[TokenId, Path()], namenode: NameNodeDep, caller: UserDep) -> TokenInfo:
    return await namenode.user_tokens.revoke(token_id, caller, namenode.is_superuser(caller))
