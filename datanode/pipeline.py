"""Forwarding a write segment to the next DataNode of the pipeline, packet by packet.

Packets are forwarded as the exact bytes received, through a small bounded queue, so
a slow downstream slows the whole pipeline (backpressure) instead of filling memory,
and a hung one is cut off after `timeout` seconds (plus DOWNSTREAM_EXTENSION_S for every node
beyond it) while this node carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx

from client.block_io import send_segment
from client.protocol.data_transfer import NodeAck, WriteBlockHeader
from client.protocol.errors import DfsError, DfsTimeoutError, InternalError

QUEUE_PACKETS = 8
#: Extra seconds of patience per node beyond the next one (HDFS extends its timeouts by 5 s per
#: pipeline node the same way).
DOWNSTREAM_EXTENSION_S = 5.0


class PipelineForwarder:
    """Streams one segment to `downstream[0]`, which forwards to the rest."""

    def __init__(self, http: httpx.AsyncClient, header: WriteBlockHeader, timeout: float, token: str = "") -> None:
        self.target = header.downstream[0]
        self.rest = list(header.downstream[1:])
        # Each node further down gets its own `timeout` to give up on a hung successor and answer:
        # waiting only as long as they do, we would time out first and blame the healthy next node.
        self.timeout = timeout + DOWNSTREAM_EXTENSION_S * len(self.rest)
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=QUEUE_PACKETS)
        self._error: DfsError | None = None
        forwarded = header.model_copy(update={"downstream": self.rest})
        self._task = asyncio.ensure_future(
            send_segment(
                http,
                self.target,
                forwarded,
                self._body(),
                token=token,
                timeout=httpx.Timeout(self.timeout, connect=min(timeout, 10.0)),
            )
        )

    async def _body(self) -> AsyncIterator[bytes]:
        while (item := await self._queue.get()) is not None:
            yield item

    @property
    def alive(self) -> bool:
        return self._error is None and not self._task.done()

    async def put(self, raw: bytes) -> None:
        """Queue a packet for the downstream node; gives up on it (not on us) if it stalls."""
        if not self.alive:
            return
        put = asyncio.ensure_future(self._queue.put(raw))
        done, _ = await asyncio.wait({put, self._task}, timeout=self.timeout, return_when=asyncio.FIRST_COMPLETED)
        if put not in done:
            put.cancel()
            if not self._task.done():
                self._fail(DfsTimeoutError(f"downstream {self.target.url} stalled for {self.timeout}s"))

    async def finish(self) -> list[NodeAck]:
        """End the segment and collect the acknowledgements of every downstream node."""
        if self.alive:
            await self.put_end()
        if self._error is None:
            try:
                response = await asyncio.wait_for(asyncio.shield(self._task), timeout=self.timeout)
                return list(response.nodes)
            except DfsError as exc:
                self._error = exc
            except TimeoutError:
                self._fail(DfsTimeoutError(f"downstream {self.target.url} did not acknowledge in time"))
            except Exception as exc:  # a bug or unexpected transport failure: still report, never hang
                self._error = InternalError(f"forwarding to {self.target.url} failed: {exc!r}")
        return self._failure_acks()

    async def put_end(self) -> None:
        put = asyncio.ensure_future(self._queue.put(None))
        done, _ = await asyncio.wait({put, self._task}, timeout=self.timeout, return_when=asyncio.FIRST_COMPLETED)
        if put not in done:
            put.cancel()

    def _failure_acks(self) -> list[NodeAck]:
        assert self._error is not None
        first = NodeAck(datanode_id=self.target.id, url=self.target.url, ok=False, error=self._error.to_body())
        return [first] + [NodeAck(datanode_id=node.id, url=node.url, ok=False) for node in self.rest]

    def _fail(self, error: DfsError) -> None:
        self._error = error
        self._task.cancel()

    async def abort(self) -> None:
        """Stop forwarding (this node failed); the downstream sees a truncated body and gives up."""
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task
