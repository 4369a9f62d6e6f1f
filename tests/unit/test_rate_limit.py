"""The per-client rate limiter: token buckets, the bounded table, caller keys, the 429 answer."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.types import Receive, Scope, Send

from client.protocol.errors import ErrorBody, ErrorCode
from server_common.rate_limit import ClientRateLimiter, RateLimitCollector, RateLimitMiddleware, client_key


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(rate: float = 10.0, burst: float = 5.0, **kwargs: Any) -> tuple[ClientRateLimiter, FakeClock]:
    clock = FakeClock()
    return ClientRateLimiter(rate, burst, clock=clock, **kwargs), clock


# --- buckets ---------------------------------------------------------------------------------


def test_a_new_client_gets_its_burst_then_is_refused() -> None:
    bucket, _ = limiter(rate=10, burst=5)
    assert [bucket.try_acquire("a") for _ in range(5)] == [None] * 5
    wait = bucket.try_acquire("a")
    assert wait == pytest.approx(0.1)  # one token at 10/s
    assert bucket.refused == 1


def test_tokens_come_back_at_the_rate() -> None:
    bucket, clock = limiter(rate=10, burst=5)
    for _ in range(5):
        bucket.try_acquire("a")
    clock.now += 0.25  # 2.5 tokens
    assert bucket.try_acquire("a") is None
    assert bucket.try_acquire("a") is None
    wait = bucket.try_acquire("a")
    assert wait == pytest.approx(0.05)  # half a token left, half missing


def test_savings_never_exceed_the_burst() -> None:
    bucket, clock = limiter(rate=10, burst=3)
    clock.now += 3600
    assert [bucket.try_acquire("a") is None for _ in range(4)] == [True, True, True, False]


def test_one_client_over_its_limit_does_not_touch_another() -> None:
    bucket, _ = limiter(rate=1, burst=2)
    for _ in range(10):
        bucket.try_acquire("hog")
    assert bucket.try_acquire("hog") is not None
    assert bucket.try_acquire("quiet") is None


@given(st.lists(st.floats(min_value=0, max_value=2.0), min_size=1, max_size=200))
def test_admitted_requests_stay_within_rate_times_time_plus_burst(gaps: list[float]) -> None:
    bucket, clock = limiter(rate=20, burst=4)
    start = clock.now
    admitted = 0
    for gap in gaps:
        clock.now += gap
        admitted += bucket.try_acquire("a") is None
    assert admitted <= 20 * (clock.now - start) + 4 + 1e-6


def test_retry_after_is_when_a_token_is_due() -> None:
    bucket, clock = limiter(rate=4, burst=1)
    bucket.try_acquire("a")
    wait = bucket.try_acquire("a")
    assert wait is not None
    clock.now += wait * 0.99
    assert bucket.try_acquire("a") is not None
    clock.now += wait * 0.02
    assert bucket.try_acquire("a") is None


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        ClientRateLimiter(0, 10)
    with pytest.raises(ValueError):
        ClientRateLimiter(10, 0.5)


# --- the bounded table -----------------------------------------------------------------------


def test_idle_buckets_are_dropped() -> None:
    bucket, clock = limiter(rate=10, burst=5)  # full again after 0.5 s idle
    for name in ("a", "b", "c"):
        bucket.try_acquire(name)
    clock.now += 1.0
    bucket.try_acquire("a")
    bucket.try_acquire("a")
    assert len(bucket) == 1


def test_a_busy_bucket_is_not_swept() -> None:
    bucket, clock = limiter(rate=10, burst=5)
    bucket.try_acquire("old")
    clock.now += 0.1  # "old" is not full yet: dropping it would hand it a free burst
    bucket.try_acquire("new")
    bucket.try_acquire("new")
    assert len(bucket) == 2


def test_the_table_never_grows_past_its_bound() -> None:
    """A caller inventing a new name per request costs at most max_clients buckets."""
    bucket, _ = limiter(rate=10, burst=5, max_clients=100)
    for i in range(10_000):
        assert bucket.try_acquire(f"invented-{i}") is None
    assert len(bucket) == 100


def test_a_full_table_drops_the_least_recently_seen() -> None:
    bucket, _ = limiter(rate=1, burst=1, max_clients=2)
    bucket.try_acquire("a")
    bucket.try_acquire("b")
    bucket.try_acquire("a")  # refused, but seen: "b" is now the oldest
    bucket.try_acquire("c")
    assert bucket.try_acquire("a") is not None  # still remembered (and still empty)
    assert bucket.try_acquire("b") is None  # forgotten: a fresh bucket


# --- keys ------------------------------------------------------------------------------------


def scope(headers: dict[str, str] | None = None, path: str = "/v1/namespace/status", query: str = "") -> Scope:
    return {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("10.1.2.3", 5555),
    }


def test_key_prefers_the_bearer_token_and_never_holds_it() -> None:
    key = client_key(scope({"Authorization": "Bearer dfs1.secret.sig", "X-DFS-User": "mallory"}))
    assert key.startswith("token:")
    assert "secret" not in key
    assert key != client_key(scope({"Authorization": "Bearer dfs1.other.sig"}))
    assert key == client_key(scope({"Authorization": "Bearer dfs1.secret.sig"}))


def test_key_of_a_stated_user_and_the_peer_fallback() -> None:
    assert client_key(scope({"X-DFS-User": "alice"})) == "user:alice"
    assert client_key(scope()) == "ip:10.1.2.3"
    assert client_key(scope({"X-DFS-Cluster-Auth": "v1:1:abc"})) == "cluster@10.1.2.3"


def test_key_of_a_webhdfs_caller_is_its_user_name() -> None:
    assert client_key(scope(path="/webhdfs/v1/a", query="op=GETFILESTATUS&user.name=bob")) == "user:bob"
    assert client_key(scope(path="/webhdfs/v1/a", query="op=GETFILESTATUS")) == "ip:10.1.2.3"
    assert client_key(scope(path="/v1/namespace/status", query="user.name=bob")) == "ip:10.1.2.3"


def test_key_of_a_huge_user_header_is_bounded() -> None:
    assert len(client_key(scope({"X-DFS-User": "x" * 100_000}))) < 300


# --- the middleware --------------------------------------------------------------------------


async def ok_app(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def client_for(bucket: ClientRateLimiter, exempt: tuple[str, ...] = ()) -> httpx.AsyncClient:
    app = RateLimitMiddleware(ok_app, bucket, exempt_prefixes=exempt)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://nn")


def test_middleware_answers_429_with_an_error_body_and_retry_after() -> None:
    bucket, _ = limiter(rate=2, burst=1)

    async def calls() -> list[httpx.Response]:
        async with client_for(bucket) as http:
            return [await http.get("/v1/namespace/status", headers={"X-DFS-User": who}) for who in "aab"]

    allowed, refused, other = asyncio.run(calls())
    assert allowed.status_code == 200
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    body = ErrorBody.model_validate(refused.json())
    assert body.code is ErrorCode.TOO_MANY_REQUESTS
    assert body.retry_after_s == pytest.approx(0.5)
    assert other.status_code == 200


def test_middleware_answers_webhdfs_callers_with_a_remote_exception() -> None:
    bucket, _ = limiter(rate=1, burst=1)

    async def calls() -> list[httpx.Response]:
        async with client_for(bucket) as http:
            return [await http.get("/webhdfs/v1/a?op=GETFILESTATUS&user.name=bob") for _ in range(2)]

    refused = asyncio.run(calls())[1]
    assert refused.status_code == 429
    assert refused.json()["RemoteException"]["exception"] == "RetriableException"
    assert "Retry-After" in refused.headers


def test_exempt_routes_are_never_limited() -> None:
    bucket, _ = limiter(rate=1, burst=1)

    async def calls() -> tuple[set[int], list[int]]:
        async with client_for(bucket, exempt=("/v1/datanode/heartbeat", "/healthz")) as http:
            exempt = {(await http.post("/v1/datanode/heartbeat")).status_code for _ in range(20)}
            exempt |= {(await http.get("/healthz")).status_code for _ in range(20)}
            limited = [(await http.get("/v1/namespace/status")).status_code for _ in range(2)]
        return exempt, limited

    exempt, limited = asyncio.run(calls())
    assert exempt == {200}
    assert limited == [200, 429]


def test_collector_reports_refusals_and_clients() -> None:
    bucket, _ = limiter(rate=1, burst=1)
    bucket.try_acquire("a")
    bucket.try_acquire("a")
    bucket.try_acquire("b")
    samples = {
        sample.name: sample.value
        for family in RateLimitCollector(bucket, "dfs_test").collect()
        for sample in family.samples
    }
    assert samples["dfs_test_rate_limited_requests_total"] == 1
    assert samples["dfs_test_rate_limit_clients"] == 2
