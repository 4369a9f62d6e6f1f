"""The one error table: wire code <-> errno <-> HTTP status <-> exception class.

Every service raises these domain errors; one handler per app renders them as the
wire body ``{"code", "errno", "message", "path"}``, and the SDK turns that body back
into the same class. Because every class is an ``OSError`` with a real errno, the
FUSE layer can pass them straight through and ``except FileNotFoundError`` works
for SDK users.
"""

from __future__ import annotations

import datetime
import email.utils
import errno as errno_mod
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError


class ErrorCode(StrEnum):
    """Stable machine-readable error codes carried on the wire."""

    INVALID_PATH = "INVALID_PATH"
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    FILE_NOT_FOUND = "FILE_NOT_FOUND"
    FILE_EXISTS = "FILE_EXISTS"
    NOT_A_DIRECTORY = "NOT_A_DIRECTORY"
    IS_A_DIRECTORY = "IS_A_DIRECTORY"
    DIRECTORY_NOT_EMPTY = "DIRECTORY_NOT_EMPTY"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    INVALID_BLOCK_TOKEN = "INVALID_BLOCK_TOKEN"
    LEASE_CONFLICT = "LEASE_CONFLICT"
    LEASE_EXPIRED = "LEASE_EXPIRED"
    NOT_ENOUGH_DATANODES = "NOT_ENOUGH_DATANODES"
    NO_SPACE = "NO_SPACE"
    SAFE_MODE = "SAFE_MODE"
    NOT_LEADER = "NOT_LEADER"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    REQUEST_TOO_LARGE = "REQUEST_TOO_LARGE"
    # Storage conditions: never confused with plain I/O failures.
    CHECKSUM_MISMATCH = "CHECKSUM_MISMATCH"
    REPLICA_NOT_FOUND = "REPLICA_NOT_FOUND"
    REPLICA_EXISTS = "REPLICA_EXISTS"
    STALE_GENERATION = "STALE_GENERATION"
    BLOCK_MISSING = "BLOCK_MISSING"
    PIPELINE_FAILED = "PIPELINE_FAILED"
    # Cluster membership.
    CLUSTER_MISMATCH = "CLUSTER_MISMATCH"
    UNKNOWN_DATANODE = "UNKNOWN_DATANODE"
    # Backpressure: refused before anything was done, so always safe to retry (after Retry-After).
    TOO_MANY_REQUESTS = "TOO_MANY_REQUESTS"
    BUSY = "BUSY"
    # Transport and server faults.
    UNAVAILABLE = "UNAVAILABLE"
    TIMEOUT = "TIMEOUT"
    PROTOCOL_ERROR = "PROTOCOL_ERROR"
    INTERNAL = "INTERNAL"


class ErrorBody(BaseModel):
    """The wire shape of every error response (JSON body of any 4xx/5xx)."""

    code: ErrorCode
    errno: int
    message: str
    path: str | None = None
    #: Set when the condition is expected to pass (start-up safe mode, a rate limit, a busy DataNode)
    #: and only on refusals answered before anything changed: the same request may be sent again
    #: after about this long, whatever it was. Also sent as the `Retry-After` header (whole seconds).
    retry_after_s: float | None = None


class DfsError(OSError):
    """Base of every error this system raises; an OSError with a real errno."""

    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL
    errno_value: ClassVar[int] = errno_mod.EIO
    http_status: ClassVar[int] = 500

    def __init__(self, message: str, *, path: str | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(self.errno_value, message)
        self.message = message
        self.path = path
        self.retry_after_s = retry_after_s

    def __str__(self) -> str:
        if self.path is None or self.path in self.message:
            return self.message
        return f"{self.message}: {self.path}"

    def __reduce__(self) -> tuple[object, ...]:
        # OSError would rebuild us from (errno, strerror); rebuild from our own arguments so
        # errors survive pickling (multiprocessing, dask workers).
        return (_rebuild, (type(self), self.message, self.path, self.retry_after_s))

    def to_body(self) -> ErrorBody:
        """The wire representation of this error."""
        return ErrorBody(
            code=self.code,
            errno=self.errno_value,
            message=self.message,
            path=self.path,
            retry_after_s=self.retry_after_s,
        )


class InvalidPathError(DfsError):
    """The path is not absolute and normalised (HTTP 400, EINVAL)."""

    code = ErrorCode.INVALID_PATH
    errno_value = errno_mod.EINVAL
    http_status = 400


class InvalidArgumentError(DfsError, ValueError):
    """A request field is out of range or inconsistent (HTTP 400, EINVAL)."""

    code = ErrorCode.INVALID_ARGUMENT
    errno_value = errno_mod.EINVAL
    http_status = 400


class DfsFileNotFoundError(DfsError, FileNotFoundError):
    """The path (or a parent) does not exist (HTTP 404, ENOENT)."""

    code = ErrorCode.FILE_NOT_FOUND
    errno_value = errno_mod.ENOENT
    http_status = 404


class DfsFileExistsError(DfsError, FileExistsError):
    """The target already exists (HTTP 409, EEXIST)."""

    code = ErrorCode.FILE_EXISTS
    errno_value = errno_mod.EEXIST
    http_status = 409


class DfsNotADirectoryError(DfsError, NotADirectoryError):
    """A directory was required, a file was found (HTTP 400, ENOTDIR)."""

    code = ErrorCode.NOT_A_DIRECTORY
    errno_value = errno_mod.ENOTDIR
    http_status = 400


class DfsIsADirectoryError(DfsError, IsADirectoryError):
    """A file was required, a directory was found (HTTP 400, EISDIR)."""

    code = ErrorCode.IS_A_DIRECTORY
    errno_value = errno_mod.EISDIR
    http_status = 400


class DirectoryNotEmptyError(DfsError):
    """A non-empty directory needs the recursive flag (HTTP 409, ENOTEMPTY)."""

    code = ErrorCode.DIRECTORY_NOT_EMPTY
    errno_value = errno_mod.ENOTEMPTY
    http_status = 409


class DfsPermissionError(DfsError, PermissionError):
    """The caller may not do this (HTTP 403, EACCES)."""

    code = ErrorCode.PERMISSION_DENIED
    errno_value = errno_mod.EACCES
    http_status = 403


class UnauthenticatedError(DfsError, PermissionError):
    """No valid credential: a missing, forged, expired or revoked token or cluster signature
    (HTTP 401, EACCES)."""

    code = ErrorCode.UNAUTHENTICATED
    errno_value = errno_mod.EACCES
    http_status = 401


class InvalidBlockTokenError(DfsError, PermissionError):
    """A DataNode refused the block access token: missing, forged, expired, for another block or
    another access mode (HTTP 403, EACCES). A client fetches fresh locations and tries again."""

    code = ErrorCode.INVALID_BLOCK_TOKEN
    errno_value = errno_mod.EACCES
    http_status = 403


class LeaseConflictError(DfsError):
    """Another client holds the write lease on this file (HTTP 409, EBUSY)."""

    code = ErrorCode.LEASE_CONFLICT
    errno_value = errno_mod.EBUSY
    http_status = 409


class LeaseExpiredError(DfsError):
    """The caller no longer holds the lease it writes under (HTTP 409, ESTALE)."""

    code = ErrorCode.LEASE_EXPIRED
    errno_value = errno_mod.ESTALE
    http_status = 409


class NotEnoughDatanodesError(DfsError):
    """No live DataNode can take the block (HTTP 503, ENOSPC)."""

    code = ErrorCode.NOT_ENOUGH_DATANODES
    errno_value = errno_mod.ENOSPC
    http_status = 503


class NoSpaceError(DfsError):
    """A DataNode volume is full (HTTP 507, ENOSPC)."""

    code = ErrorCode.NO_SPACE
    errno_value = errno_mod.ENOSPC
    http_status = 507


class SafeModeError(DfsError):
    """The NameNode is in safe mode and refuses changes (HTTP 503, EAGAIN)."""

    code = ErrorCode.SAFE_MODE
    errno_value = errno_mod.EAGAIN
    http_status = 503


class NotLeaderError(DfsError):
    """Work only the leader NameNode does (the balancer) asked of another one (HTTP 421, EAGAIN):
    a client with several NameNode URLs tries the next one."""

    code = ErrorCode.NOT_LEADER
    errno_value = errno_mod.EAGAIN
    http_status = 421


class NotSupportedError(DfsError):
    """The operation is not supported (HTTP 501, EOPNOTSUPP)."""

    code = ErrorCode.NOT_SUPPORTED
    errno_value = errno_mod.EOPNOTSUPP
    http_status = 501


class RequestTooLargeError(DfsError):
    """A request body or field exceeds its limit (HTTP 413, EFBIG)."""

    code = ErrorCode.REQUEST_TOO_LARGE
    errno_value = errno_mod.EFBIG
    http_status = 413


class ChecksumMismatchError(DfsError):
    """Bytes did not match their checksum: corruption, never a plain I/O error (HTTP 422, EIO)."""

    code = ErrorCode.CHECKSUM_MISMATCH
    errno_value = errno_mod.EIO
    http_status = 422


class ReplicaNotFoundError(DfsError):
    """This DataNode has no usable replica of the block (HTTP 404, EIO)."""

    code = ErrorCode.REPLICA_NOT_FOUND
    errno_value = errno_mod.EIO
    http_status = 404


class ReplicaExistsError(DfsError):
    """The DataNode already has a replica of the block (HTTP 409, EEXIST)."""

    code = ErrorCode.REPLICA_EXISTS
    errno_value = errno_mod.EEXIST
    http_status = 409


class StaleGenerationError(DfsError):
    """The replica's generation stamp does not match the request (HTTP 409, EIO)."""

    code = ErrorCode.STALE_GENERATION
    errno_value = errno_mod.EIO
    http_status = 409


class BlockMissingError(DfsError):
    """No replica of a block could be read (HTTP 503, EIO)."""

    code = ErrorCode.BLOCK_MISSING
    errno_value = errno_mod.EIO
    http_status = 503


class PipelineFailedError(DfsError):
    """Every DataNode of a write pipeline failed (HTTP 502, EIO)."""

    code = ErrorCode.PIPELINE_FAILED
    errno_value = errno_mod.EIO
    http_status = 502


class ClusterMismatchError(DfsError):
    """A DataNode belongs to another cluster (HTTP 409, EINVAL)."""

    code = ErrorCode.CLUSTER_MISMATCH
    errno_value = errno_mod.EINVAL
    http_status = 409


class UnknownDatanodeError(DfsError):
    """The NameNode does not know this DataNode; it must register (HTTP 404, EIO)."""

    code = ErrorCode.UNKNOWN_DATANODE
    errno_value = errno_mod.EIO
    http_status = 404


class TooManyRequestsError(DfsError):
    """The caller is over its rate limit; nothing was done, retry after `retry_after_s` (HTTP 429, EAGAIN)."""

    code = ErrorCode.TOO_MANY_REQUESTS
    errno_value = errno_mod.EAGAIN
    http_status = 429


class ServerBusyError(DfsError):
    """A server is at its limit of concurrent transfers; nothing was done, retry after
    `retry_after_s` or elsewhere (HTTP 503, EBUSY)."""

    code = ErrorCode.BUSY
    errno_value = errno_mod.EBUSY
    http_status = 503


class UnavailableError(DfsError, ConnectionError):
    """A service could not be reached (HTTP 503, ECONNREFUSED)."""

    code = ErrorCode.UNAVAILABLE
    errno_value = errno_mod.ECONNREFUSED
    http_status = 503


class DfsTimeoutError(DfsError, TimeoutError):
    """A service did not answer in time (HTTP 504, ETIMEDOUT)."""

    code = ErrorCode.TIMEOUT
    errno_value = errno_mod.ETIMEDOUT
    http_status = 504


class ProtocolError(DfsError):
    """A peer sent something that does not follow the protocol (HTTP 400, EPROTO)."""

    code = ErrorCode.PROTOCOL_ERROR
    errno_value = errno_mod.EPROTO
    http_status = 400


class InternalError(DfsError):
    """An unexpected server fault (HTTP 500, EIO)."""

    code = ErrorCode.INTERNAL
    errno_value = errno_mod.EIO
    http_status = 500


ERROR_CLASSES: dict[ErrorCode, type[DfsError]] = {
    cls.code: cls
    for cls in (
        InvalidPathError,
        InvalidArgumentError,
        DfsFileNotFoundError,
        DfsFileExistsError,
        DfsNotADirectoryError,
        DfsIsADirectoryError,
        DirectoryNotEmptyError,
        DfsPermissionError,
        UnauthenticatedError,
        InvalidBlockTokenError,
        LeaseConflictError,
        LeaseExpiredError,
        NotEnoughDatanodesError,
        NoSpaceError,
        SafeModeError,
        NotLeaderError,
        NotSupportedError,
        RequestTooLargeError,
        ChecksumMismatchError,
        ReplicaNotFoundError,
        ReplicaExistsError,
        StaleGenerationError,
        BlockMissingError,
        PipelineFailedError,
        ClusterMismatchError,
        UnknownDatanodeError,
        TooManyRequestsError,
        ServerBusyError,
        UnavailableError,
        DfsTimeoutError,
        ProtocolError,
        InternalError,
    )
}


def describe_validation_errors(errors: Sequence[Mapping[str, Any]], limit: int = 5) -> str:
    """One line naming each bad field: 'replication: Input should be ... ; path: ...'."""
    parts = []
    for error in list(errors)[:limit]:
        location = ".".join(str(item) for item in error.get("loc", ()) if item != "body")
        parts.append(f"{location}: {error.get('msg', 'invalid')}" if location else str(error.get("msg", "invalid")))
    return "; ".join(parts)


def invalid_argument(exc: ValidationError) -> InvalidArgumentError:
    """A pydantic validation failure as the protocol's INVALID_ARGUMENT error."""
    return InvalidArgumentError(f"invalid {exc.title}: {describe_validation_errors(exc.errors())}")


def _rebuild(cls: type[DfsError], message: str, path: str | None, retry_after_s: float | None = None) -> DfsError:
    return cls(message, path=path, retry_after_s=retry_after_s)


def error_from_body(body: ErrorBody) -> DfsError:
    """Rebuild the exception a server raised from its wire body."""
    return ERROR_CLASSES[body.code](body.message, path=body.path, retry_after_s=body.retry_after_s)


#: A `Retry-After` longer than this is taken as this (a broken or hostile server must not park a client).
MAX_RETRY_AFTER_S = 300.0


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header: delta-seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        seconds = float(text)
    else:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.UTC)
        seconds = (when - datetime.datetime.now(datetime.UTC)).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def error_from_response(status: int, payload: object, retry_after: str | None = None) -> DfsError:
    """Turn any error response into a DfsError, even one that is not our wire shape.

    `retry_after` is the response's `Retry-After` header: it fills in `retry_after_s` when the
    body does not carry one, for a 429 or a 503 (a proxy's 503 with Retry-After says "try again")."""
    header_wait = parse_retry_after(retry_after) if status in (429, 503) else None
    if isinstance(payload, dict):
        try:
            error = error_from_body(ErrorBody.model_validate(payload))
        except ValueError:
            pass
        else:
            if error.retry_after_s is None:
                error.retry_after_s = header_wait
            return error
    text = str(payload)[:300] if payload else f"HTTP {status}"
    if status == 429:
        return TooManyRequestsError(f"too many requests (HTTP 429): {text}", retry_after_s=header_wait)
    if header_wait is not None and status == 503:
        return UnavailableError(f"service unavailable (HTTP 503): {text}", retry_after_s=header_wait)
    if status == 404:
        return DfsFileNotFoundError(f"not found (HTTP 404): {text}")
    if status in (502, 503):
        return UnavailableError(f"service unavailable (HTTP {status}): {text}")
    if status == 504:
        return DfsTimeoutError(f"service timed out (HTTP 504): {text}")
    if 400 <= status < 500:
        return ProtocolError(f"request refused (HTTP {status}): {text}")
    return InternalError(f"server error (HTTP {status}): {text}")
