"""Acting for another user, one call at a time: a per-call override of the client's user.

A process serving several local users through one client (the FUSE mount with
``--allow-other``) runs each call inside `acting_as(name)`; `NameNodeRPC` then states that
user (``X-DFS-User``) instead of the client's own, so the NameNode checks and records the
caller's permissions and ownership. This is "simple" authentication: it names a user, it
proves nothing. When the client holds a bearer token, the NameNode takes the user from the
token and ignores the header, so every caller acts as the token's user.

A context variable, so it follows the call into the SDK's I/O loop thread
(`asyncio.run_coroutine_threadsafe` copies the caller's context) and never leaks into other
threads' calls.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

__all__ = ["acting_as", "acting_user"]

_acting_user: ContextVar[str | None] = ContextVar("dfs_acting_user", default=None)


def acting_user() -> str | None:
    """The user the current call acts as, if overridden (None: the client's own)."""
    return _acting_user.get()


@contextlib.contextmanager
def acting_as(user: str | None) -> Iterator[None]:
    """Run the calls made inside the block as `user` (None: as the client's own user)."""
    token = _acting_user.set(user)
    try:
        yield
    finally:
        _acting_user.reset(token)
