"""Retry waits: the jittered backoff schedule, the deadline, Retry-After parsing, and the RPC retry loop."""

from __future__ import annotations

import asyncio
import email.utils
import time

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from client.backoff import Backoff, RetryBudget
from client.namenode_rpc import NameNodeRPC
from client.protocol.errors import (
    MAX_RETRY_AFTER_S,
    DfsPermissionError,
    ErrorCode,
    ServerBusyError,
    TooManyRequestsError,
    UnavailableError,
    error_from_response,
    parse_retry_after,
)

# --- the schedule ----------------------------------------------------------------------------


def test_window_doubles_up_to_the_cap() -> None:
    backoff = Backoff(base_s=0.1, cap_s=1.0)
    assert [backoff.window(n) for n in range(6)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


def test_a_hint_widens_the_window_but_never_past_the_cap() -> None:
    backoff = Backoff(base_s=0.1, cap_s=2.0)
    assert backoff.window(0, hint_s=0.5) == pytest.approx(0.5)
    assert backoff.window(0, hint_s=30.0) == pytest.approx(2.0)
    assert backoff.window(3, hint_s=0.001) == pytest.approx(0.8)


def test_huge_attempt_numbers_do_not_overflow() -> None:
    assert Backoff(cap_s=2.0).window(10_000) == 2.0


@given(st.integers(0, 100), st.floats(0, 1000) | st.none())
def test_delays_are_full_jitter_within_the_window(attempt: int, hint: float | None) -> None:
    backoff = Backoff(base_s=0.05, cap_s=2.0)
    delay = backoff.delay(attempt, hint)
    assert 0.0 <= delay <= backoff.window(attempt, hint) <= 2.0


def test_delays_are_spread_not_synchronised() -> None:
    backoff = Backoff(base_s=1.0, cap_s=1.0)
    delays = {round(backoff.delay(0), 6) for _ in range(50)}
    assert len(delays) > 40


def test_budget_refuses_a_wait_that_would_end_past_its_deadline() -> None:
    async def scenario() -> list[bool]:
        longest = Backoff(base_s=0.5, cap_s=0.5, uniform=lambda _lo, hi: hi)
        short = RetryBudget(0.3, longest)
        roomy = RetryBudget(60.0, Backoff(base_s=0.01, cap_s=0.01, uniform=lambda _lo, hi: hi))
        return [await short.wait(), short.attempt == 0, await roomy.wait(), roomy.attempt == 1]

    assert asyncio.run(scenario()) == [False, True, True, True]


def test_budget_reset_starts_from_the_smallest_window() -> None:
    async def scenario() -> list[float]:
        seen: list[float] = []

        def record(_lo: float, hi: float) -> float:
            seen.append(hi)
            return 0.0

        budget = RetryBudget(10, Backoff(base_s=0.1, cap_s=10, uniform=record))
        await budget.wait()
        await budget.wait()
        budget.reset()
        await budget.wait()
        return seen

    assert asyncio.run(scenario()) == pytest.approx([0.1, 0.2, 0.1])


# --- Retry-After -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3", 3.0), (" 0 ", 0.0), (None, None), ("", None), ("soon", None), ("-1", None), ("1.5", None)],
)
def test_parse_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date_and_caps() -> None:
    in_ten = email.utils.formatdate(time.time() + 10, usegmt=True)
    assert parse_retry_after(in_ten) == pytest.approx(10, abs=2)
    assert parse_retry_after(email.utils.formatdate(time.time() - 100, usegmt=True)) == 0.0
    assert parse_retry_after("999999999") == MAX_RETRY_AFTER_S


def test_a_foreign_429_becomes_too_many_requests_with_the_header_wait() -> None:
    exc = error_from_response(429, "<html>slow down</html>", "7")
    assert isinstance(exc, TooManyRequestsError)
    assert exc.retry_after_s == 7.0
    assert isinstance(error_from_response(429, None), TooManyRequestsError)


def test_a_foreign_503_with_retry_after_is_retryable_and_without_it_is_not() -> None:
    assert error_from_response(503, "maintenance", "2").retry_after_s == 2.0
    plain = error_from_response(503, "maintenance")
    assert isinstance(plain, UnavailableError)
    assert plain.retry_after_s is None


def test_the_header_fills_in_a_body_without_retry_after_but_never_overrides_one() -> None:
    body = {"code": "BUSY", "errno": 16, "message": "busy", "path": None}
    assert error_from_response(503, body, "4").retry_after_s == 4.0
    assert error_from_response(503, body | {"retry_after_s": 0.25}, "4").retry_after_s == 0.25


def test_retry_after_on_other_statuses_is_ignored() -> None:
    """Only 429/503 mean "nothing was done, come back": a 403 with the header is still final."""
    exc = error_from_response(403, {"code": "PERMISSION_DENIED", "errno": 13, "message": "no", "path": None}, "1")
    assert isinstance(exc, DfsPermissionError)
    assert exc.retry_after_s is None


def test_busy_and_rate_limit_codes_have_their_statuses() -> None:
    assert (TooManyRequestsError.code, TooManyRequestsError.http_status) == (ErrorCode.TOO_MANY_REQUESTS, 429)
    assert (ServerBusyError.code, ServerBusyError.http_status) == (ErrorCode.BUSY, 503)


# --- the NameNode RPC retry loop (the server is a MockTransport) ------------------------------

STATUS = {
    "file_id": 2,
    "name": "a",
    "path": "/a",
    "type": "directory",
    "length": 0,
    "replication": 0,
    "block_size": 0,
    "mode": 493,
    "owner": "u",
    "group": "g",
    "mtime": 0,
    "atime": 0,
}


def run_rpc(answers: list[httpx.Response], retry_wait_s: float = 5.0) -> tuple[object, int]:
    calls = 0

    def handler(_request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return answers[min(calls, len(answers)) - 1]

    async def scenario() -> object:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            rpc = NameNodeRPC(http, "http://nn", user="u", client_name="c", retry_wait_s=retry_wait_s)
            rpc.backoff = Backoff(base_s=0.001, cap_s=0.01)
            try:
                return await rpc.mkdirs("/a")
            except Exception as exc:
                return exc

    return asyncio.run(scenario()), calls


def refusal(status: int, code: str, retry_after_s: float | None) -> httpx.Response:
    body = {"code": code, "errno": 11, "message": "later", "path": None, "retry_after_s": retry_after_s}
    return httpx.Response(status, json=body)


def test_rpc_retries_429_until_it_succeeds() -> None:
    answers = [refusal(429, "TOO_MANY_REQUESTS", 0.001)] * 3 + [httpx.Response(200, json=STATUS)]
    result, calls = run_rpc(answers)
    assert getattr(result, "path", None) == "/a"
    assert calls == 4


def test_rpc_gives_up_at_its_deadline() -> None:
    result, calls = run_rpc([refusal(429, "TOO_MANY_REQUESTS", 0.001)], retry_wait_s=0.2)
    assert isinstance(result, TooManyRequestsError)
    assert calls > 1


def test_rpc_never_retries_a_refusal_without_retry_after() -> None:
    """A 503 that does not say "nothing was done" may have done something: a create is not resent."""
    result, calls = run_rpc([refusal(503, "NOT_ENOUGH_DATANODES", None), httpx.Response(200, json=STATUS)])
    assert calls == 1
    assert getattr(result, "code", None) is ErrorCode.NOT_ENOUGH_DATANODES
