"""An httpx transport that counts the requests it sends, for tests that prove a cache saves calls."""

from __future__ import annotations

import collections

import httpx


class CountingTransport(httpx.AsyncHTTPTransport):
    """The network, with a tally of requests by path."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: collections.Counter[str] = collections.Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests[request.url.path] += 1
        return await super().handle_async_request(request)
