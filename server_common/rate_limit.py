"""Per-client rate limits: a token bucket per caller, checked before a request reaches the app.

A pure ASGI middleware (like server_common.request_id): a refused request is answered
`429 TOO_MANY_REQUESTS` with `retry_after_s` and a `Retry-After` header before any route,
dependency or body read runs, so the refusal changed nothing and any call may be retried
(the SDK does, with jittered backoff). The hot path is a scan of the header list, one dict
lookup and a little arithmetic.

Who a caller is (`client_key`) is read from the request as sent, not from the authenticated
user (authentication runs later, in the routes' dependencies, and may change):

1. ``Authorization: Bearer <token>``: a digest of the token. A token cannot be guessed, so no
   one can spend another caller's budget; a forged token gets a bucket of its own and is then
   refused by authentication.
2. ``X-DFS-Cluster-Auth`` (cluster-signed requests): the peer address, as ``cluster@<ip>``.
3. ``X-DFS-User`` (simple authentication), or ``user.name`` on WebHDFS URLs: the stated user.
   In simple mode a caller can claim any name, so this limits runaway clients, not hostile
   ones (a hostile simple-mode client can also delete everything; token mode closes both).
4. Otherwise the peer IP address.

The table of buckets is bounded: a bucket that has been idle long enough to be full again is
the same as a new one and is dropped (oldest first, a few per request); past `max_clients`
the least recently seen bucket is dropped even if not full, so a caller inventing new names
costs memory up to the bound and no more.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import parse_qsl

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from starlette.types import ASGIApp, Receive, Scope, Send

from client.protocol.common import HEADER_USER
from client.protocol.errors import TooManyRequestsError
from client.protocol.security import HEADER_AUTHORIZATION, HEADER_CLUSTER_AUTH
from client.protocol.webhdfs import PREFIX as WEBHDFS_PREFIX
from client.protocol.webhdfs import java_exception, remote_exception

__all__ = [
    "DEFAULT_MAX_CLIENTS",
    "ClientRateLimiter",
    "RateLimitCollector",
    "RateLimitMiddleware",
    "client_key",
]

#: Buckets kept at most (about 200 bytes each).
DEFAULT_MAX_CLIENTS = 10_000
#: Idle buckets dropped per request at most: amortised O(1), and enough to keep up with any arrival rate.
SWEEP_PER_REQUEST = 2
MAX_KEY_LENGTH = 256

_AUTHORIZATION = HEADER_AUTHORIZATION.lower().encode("latin-1")
_CLUSTER_AUTH = HEADER_CLUSTER_AUTH.lower().encode("latin-1")
_USER = HEADER_USER.lower().encode("latin-1")


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class ClientRateLimiter:
    """Token buckets keyed by caller: `rate` requests per second sustained, `burst` at once.

    Not the replication `namenode.throttle.TokenBucket`: that one remembers every handout for
    its recent-rate figure, which per request and per caller would cost a deque entry each;
    a caller's bucket here is two floats."""

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1 or max_clients < 1:
            raise ValueError("need rate > 0, burst >= 1 and max_clients >= 1")
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self.clock = clock
        #: Least recently seen first.
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        #: Seconds an idle bucket takes to fill up again (after that it is as good as new).
        self._refill_s = burst / rate
        self.refused = 0

    def __len__(self) -> int:
        return len(self._buckets)

    def try_acquire(self, key: str) -> float | None:
        """Spend one token of `key`'s bucket: None if allowed, else seconds until a token is due."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            self._make_room(now)
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
            self._sweep(now)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        self.refused += 1
        return (1.0 - bucket.tokens) / self.rate

    def _sweep(self, now: float) -> None:
        """Drop a few of the oldest buckets that have been idle long enough to be full."""
        for _ in range(SWEEP_PER_REQUEST):
            if not self._buckets:
                return
            key, oldest = next(iter(self._buckets.items()))
            if now - oldest.stamp < self._refill_s:
                return
            del self._buckets[key]

    def _make_room(self, now: float) -> None:
        self._sweep(now)
        while len(self._buckets) >= self.max_clients:
            self._buckets.popitem(last=False)  # a caller seen again later starts with a full bucket


def client_key(scope: Scope) -> str:
    """Whose bucket a request spends (see the module docstring for the order)."""
    authorization = user = None
    cluster_signed = False
    headers: Iterable[tuple[bytes, bytes]] = scope.get("headers", ())
    for name, value in headers:
        if name == _AUTHORIZATION:
            authorization = value
        elif name == _CLUSTER_AUTH:
            cluster_signed = True
        elif name == _USER:
            user = value
    peer = scope.get("client")
    address = str(peer[0]) if peer else "unknown"
    if authorization is not None:
        return "token:" + hashlib.blake2b(authorization, digest_size=12).hexdigest()
    if cluster_signed:
        return "cluster@" + address
    if user:
        return "user:" + user[:MAX_KEY_LENGTH].decode("latin-1")
    if str(scope.get("path", "")).startswith(WEBHDFS_PREFIX):
        stated = _webhdfs_user(scope.get("query_string", b""))
        if stated:
            return "user:" + stated[:MAX_KEY_LENGTH]
    return "ip:" + address


def _webhdfs_user(query: bytes) -> str | None:
    """WebHDFS's simple authentication: the `user.name` parameter (names are case-insensitive)."""
    if b"user.name" not in query.lower():
        return None
    for name, value in parse_qsl(query.decode("latin-1")[:8192]):
        if name.lower() == "user.name" and value:
            return value
    return None


class RateLimitMiddleware:
    """Answers 429 (our ErrorBody, or a RemoteException on WebHDFS URLs) to callers over their rate.

    `exempt_prefixes`: paths never limited (health checks, metrics, the DataNode protocol,
    whose heartbeats and block reports must get through however busy the clients are)."""

    def __init__(
        self,
        app: ASGIApp,
        limiter: ClientRateLimiter,
        exempt_prefixes: tuple[str, ...] = (),
        key: Callable[[Scope], str] = client_key,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.exempt_prefixes = exempt_prefixes
        self.key = key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).startswith(self.exempt_prefixes):
            await self.app(scope, receive, send)
            return
        wait = self.limiter.try_acquire(self.key(scope))
        if wait is None:
            await self.app(scope, receive, send)
            return
        await self._refuse(scope, send, wait)

    async def _refuse(self, scope: Scope, send: Send, wait: float) -> None:
        error = TooManyRequestsError(
            f"too many requests: over the limit of {self.limiter.rate:g} per second "
            f"(burst {self.limiter.burst:g}); retry after {wait:.3f}s",
            retry_after_s=round(max(wait, 0.001), 3),
        )
        if str(scope.get("path", "")).startswith(WEBHDFS_PREFIX):
            content: dict[str, object] = remote_exception(java_exception(error), error.message)
        else:
            content = error.to_body().model_dump(mode="json")
        body = json.dumps(content, separators=(",", ":")).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(max(1, math.ceil(wait))).encode()),
        ]
        await send({"type": "http.response.start", "status": error.http_status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class RateLimitCollector:
    """`<prefix>_rate_limited_requests_total` and `<prefix>_rate_limit_clients` for /metrics."""

    def __init__(self, limiter: ClientRateLimiter, prefix: str) -> None:
        self.limiter = limiter
        self.prefix = prefix

    def collect(self) -> Iterator[Metric]:
        refused = CounterMetricFamily(
            f"{self.prefix}_rate_limited_requests", "Requests refused with 429 by the per-client rate limit"
        )
        refused.add_metric([], self.limiter.refused)
        yield refused
        clients = GaugeMetricFamily(f"{self.prefix}_rate_limit_clients", "Callers with a rate-limit bucket")
        clients.add_metric([], len(self.limiter))
        yield clients
