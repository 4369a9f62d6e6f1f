"""Signed credentials on the wire: block access tokens, user (delegation) tokens, cluster-secret requests.

Everything here is keyed from the one *cluster secret* that the NameNode and the DataNodes share
(docs/security.md). Keys for separate purposes are derived with HMAC-SHA256, so a key of one
kind never verifies a credential of another:

    block key of epoch E  = HMAC(secret, "dfs/block-key/v1/E")   E: unix seconds the key epoch starts
    user-token key        = HMAC(secret, "dfs/user-token/v1")
    cluster-request key   = HMAC(secret, "dfs/cluster-request/v1")
    replica-receipt key   = HMAC(secret, "dfs/replica-receipt/v1")

A token is ``dfs1.<base64url(JSON claims)>.<base64url(HMAC-SHA256(key, "dfs1." + claims part))>``.
Claims are readable by anyone who holds the token (a client reads its expiry); only a holder of
the key can make or verify one. Block keys rotate by epoch: every NameNode derives the key of the
current epoch, and every DataNode can derive the key a token names, so neither restarts nor
several NameNodes need keys to be distributed.

A request signed with the cluster secret carries ``X-DFS-Cluster-Auth: v1:<unix ms>:<hex HMAC>``
over the method, the path with its query, the time and the SHA-256 of the body; a server accepts
it within `CLUSTER_AUTH_WINDOW_S` of its own clock.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import secrets
import time
from enum import StrEnum
from typing import Annotated, TypeVar

from pydantic import BaseModel, Field, ValidationError

from client.protocol.common import NUL_FREE, BlockId, WireModel

HEADER_BLOCK_TOKEN = "X-DFS-Block-Token"
HEADER_CLUSTER_AUTH = "X-DFS-Cluster-Auth"
HEADER_AUTHORIZATION = "Authorization"
#: Query parameter a DataNode accepts a block token in (WebHDFS-style redirects and plain URLs).
BLOCK_TOKEN_PARAM = "block_token"

TOKEN_PREFIX = "dfs1"
#: Longest token text accepted anywhere (claims are small; this bounds parsing work).
MAX_TOKEN_LENGTH = 2048
#: How far the signer's clock may be from the verifier's, for cluster-signed requests and token times.
CLUSTER_AUTH_WINDOW_S = 300.0
#: Bytes of entropy in a generated cluster secret.
SECRET_BYTES = 32
MIN_SECRET_LENGTH = 32

UserName = Annotated[str, Field(min_length=1, max_length=256, pattern=NUL_FREE)]
TokenId = Annotated[str, Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class InvalidCredentialError(ValueError):
    """A token or signature that does not verify; the message says why (for logs, not for secrets)."""


class BlockAccessMode(StrEnum):
    """What a block token lets its holder do with one block on a DataNode (HDFS's AccessMode)."""

    READ = "read"  # read bytes and checksums
    WRITE = "write"  # create, continue and recover a replica being written
    REPLICATE = "replicate"  # copy a finalised replica to a new home (re-replication, balancing)


class BlockTokenClaims(WireModel):
    """The signed content of a block access token."""

    key_epoch: Annotated[int, Field(ge=0)]
    block_id: BlockId
    user: UserName
    modes: Annotated[list[BlockAccessMode], Field(min_length=1, max_length=3)]
    expires_ms: Annotated[int, Field(ge=0)]


class UserTokenClaims(WireModel):
    """The signed content of a user (delegation) token."""

    token_id: TokenId
    user: UserName
    issued_ms: Annotated[int, Field(ge=0)]
    expires_ms: Annotated[int, Field(ge=0)]


class BlockTokenPolicy(WireModel):
    """How the NameNode issues block tokens, told to each DataNode when it registers."""

    required: bool = True
    key_rotation_s: Annotated[float, Field(gt=0)]
    lifetime_s: Annotated[float, Field(gt=0)]


C = TypeVar("C", bound=BaseModel)


# --- keys ----------------------------------------------------------------------------------------


def generate_secret() -> str:
    """A new random cluster secret (URL-safe text)."""
    return secrets.token_urlsafe(SECRET_BYTES)


def derive_key(secret: str, purpose: str) -> bytes:
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).digest()


@functools.lru_cache(maxsize=64)
def block_key(secret: str, epoch: int) -> bytes:
    """The key of one rotation epoch. Cached: every token issued or checked needs one, and only
    the few epochs still valid are in use."""
    return derive_key(secret, f"dfs/block-key/v1/{epoch}")


def user_token_key(secret: str) -> bytes:
    return derive_key(secret, "dfs/user-token/v1")


def cluster_request_key(secret: str) -> bytes:
    return derive_key(secret, "dfs/cluster-request/v1")


def replica_receipt_key(secret: str) -> bytes:
    return derive_key(secret, "dfs/replica-receipt/v1")


# --- tokens --------------------------------------------------------------------------------------


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_token(key: bytes, claims: BaseModel) -> str:
    """The token text for `claims`, signed with `key`."""
    signed = f"{TOKEN_PREFIX}.{_b64encode(claims.model_dump_json().encode())}"
    signature = hmac.new(key, signed.encode(), hashlib.sha256).digest()
    return f"{signed}.{_b64encode(signature)}"


def read_claims(token: str, model: type[C]) -> C:
    """The claims of a token, *unverified* (a client reading its own token's expiry)."""
    parts = token.split(".")
    if len(token) > MAX_TOKEN_LENGTH or len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        raise InvalidCredentialError("not a dfs1 token")
    try:
        return model.model_validate_json(_b64decode(parts[1]))
    except (ValueError, binascii.Error, ValidationError) as exc:
        raise InvalidCredentialError("malformed token claims") from exc


def verify_signed(token: str, model: type[C], key: bytes) -> C:
    """The claims of `token` if it was signed with `key`; raises InvalidCredentialError otherwise.

    Expiry is the caller's to check (it knows its clock and what "expired" means for it)."""
    claims = read_claims(token, model)
    signed, _, signature = token.rpartition(".")
    expected = hmac.new(key, signed.encode(), hashlib.sha256).digest()
    try:
        given = _b64decode(signature)
    except (ValueError, binascii.Error) as exc:
        raise InvalidCredentialError("malformed token signature") from exc
    if not hmac.compare_digest(expected, given):
        raise InvalidCredentialError("bad token signature")
    return claims


# --- cluster-signed requests ---------------------------------------------------------------------


def _request_mac(key: bytes, method: str, target: str, stamp_ms: int, body: bytes) -> str:
    message = f"{method.upper()}\n{target}\n{stamp_ms}\n{hashlib.sha256(body).hexdigest()}"
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def sign_request(key: bytes, method: str, target: str, body: bytes, now: float | None = None) -> str:
    """The `X-DFS-Cluster-Auth` value for a request (`target`: path plus ``?query`` if any)."""
    stamp_ms = int((time.time() if now is None else now) * 1000)
    return f"v1:{stamp_ms}:{_request_mac(key, method, target, stamp_ms, body)}"


def verify_request(key: bytes, header: str, method: str, target: str, body: bytes, now: float | None = None) -> None:
    """Raise InvalidCredentialError unless `header` signs exactly this request, recently."""
    version, _, rest = header.partition(":")
    stamp_text, _, mac = rest.partition(":")
    if version != "v1" or not stamp_text.isdigit() or len(mac) != 64:
        raise InvalidCredentialError(f"malformed {HEADER_CLUSTER_AUTH} header")
    stamp_ms = int(stamp_text)
    current = time.time() if now is None else now
    if abs(current - stamp_ms / 1000) > CLUSTER_AUTH_WINDOW_S:
        raise InvalidCredentialError("cluster-signed request is too old or from the future (check the clocks)")
    if not hmac.compare_digest(_request_mac(key, method, target, stamp_ms, body), mac):
        raise InvalidCredentialError("bad cluster signature (a different cluster secret?)")


# --- replica receipts ----------------------------------------------------------------------------
#
# A DataNode that finalised a replica puts a receipt in its pipeline acknowledgement; the writer
# hands the receipts to the NameNode with the commit (add_block's `previous`, complete's `last`),
# which records those replicas in the commit's own transaction. The DataNode's incremental report
# then no longer has to reach the NameNode before the writer is acknowledged (docs/protocol.md).

RECEIPT_LENGTH = 64  # hex HMAC-SHA256


def sign_receipt(key: bytes, datanode_id: str, block_id: int, gen_stamp: int, length: int) -> str:
    """The receipt for "`datanode_id` holds block `block_id` at `gen_stamp`, finalised at `length`"."""
    message = f"replica\n{datanode_id}\n{block_id}\n{gen_stamp}\n{length}"
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def verify_receipt(key: bytes, receipt: str, datanode_id: str, block_id: int, gen_stamp: int, length: int) -> bool:
    return hmac.compare_digest(sign_receipt(key, datanode_id, block_id, gen_stamp, length), receipt)


# --- the token API on the NameNode -----------------------------------------------------------------


class TokenRoutes:
    TOKENS = "/v1/tokens"  # POST: issue; GET: list
    TOKEN = "/v1/tokens/{token_id}"  # DELETE: revoke


class CreateTokenRequest(WireModel):
    """Issue a token for `user` (default: the caller; another user needs the superuser)."""

    user: UserName | None = None
    #: Seconds the token is valid (default and maximum: the NameNode's settings).
    ttl_s: Annotated[float, Field(gt=0, le=10 * 365 * 24 * 3600)] | None = None
    description: Annotated[str, Field(max_length=256, pattern=NUL_FREE)] = ""


class TokenInfo(WireModel):
    """An issued token as listed (never the token text)."""

    token_id: TokenId
    user: str
    issued_by: str
    issued_ms: int
    expires_ms: int
    revoked: bool
    description: str = ""


class IssuedToken(WireModel):
    """A new token: `token` is the bearer credential, shown once."""

    token: str
    info: TokenInfo


class TokenList(WireModel):
    tokens: list[TokenInfo]
