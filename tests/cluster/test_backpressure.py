"""Backpressure and limits on real processes: 429 from the NameNode's rate limit, 503 BUSY from a
DataNode at max_transfers, 413 for oversized bodies and blocks, hostile packet headers. The SDK
backs off and its calls still succeed; other clients are not affected."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from client import AsyncDFSClient
from client.protocol.client_namenode import LocatedBlock, Routes
from client.protocol.common import HEADER_USER, HEADER_WRITE, MAX_INT64
from client.protocol.data_transfer import (
    PACKET_HEADER,
    PACKET_MAGIC,
    PACKET_VERSION,
    WriteBlockHeader,
    WriteStage,
    encode_header_model,
    encode_packet,
)
from client.protocol.errors import ErrorBody, ErrorCode, InvalidArgumentError
from client.protocol.security import HEADER_CLUSTER_AUTH
from tests.faults import read_with_replica_first
from tests.minicluster import MiniCluster, wait_until

pytestmark = pytest.mark.cluster

MIB = 1024 * 1024
CHUNK = 64 * 1024
#: The limited cluster's rate: far below what a hammering client sends, above the harness's polling.
RATE = 50
#: Big enough that a reader that stops reading keeps its stream (and its transfer slot) open:
#: more than the loopback socket buffers hold.
HELD_FILE_SIZE = 32 * MIB


# --- clusters ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MiniCluster]:
    """Tiny limits: 50 requests/s per client, 64 KiB client bodies, 64 KiB blocks, 1 MiB max on create."""
    base = tmp_path_factory.mktemp("limited")
    mini = MiniCluster(
        base,
        datanodes=1,
        namenode_args=[
            *("--client-rate-limit", str(RATE), "--client-rate-burst", str(RATE)),
            *("--max-request-bytes", str(64 * 1024)),
            *("--default-block-size", str(64 * 1024), "--max-block-size", str(MIB)),
            *("--default-replication", "1"),
        ],
        datanode_args=["--max-block-size", str(64 * 1024)],
    )
    try:
        mini.start()
        yield mini
    finally:
        mini.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MiniCluster]:
    """Two DataNodes that serve one transfer at a time."""
    base = tmp_path_factory.mktemp("busy")
    mini = MiniCluster(base, datanodes=2, datanode_args=["--max-transfers", "1"])
    try:
        mini.start()
        yield mini
    finally:
        mini.stop()
        shutil.rmtree(base, ignore_errors=True)


# --- helpers -----------------------------------------------------------------------------------


def metric(url: str, name: str, **labels: str) -> float:
    """The value of one sample on a server's /metrics (0 if absent)."""
    text = httpx.get(url + "/metrics", timeout=10.0).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def refused_by_datanodes(cluster: MiniCluster) -> float:
    return sum(metric(node.url or "", "dfs_datanode_transfers_refused_total") for node in cluster.datanodes)


def hammer(url: str, headers: dict[str, str], *, requests: int = 2000, concurrency: int = 25) -> list[httpx.Response]:
    """Stat "/" as fast as possible until a 429 comes back (at most `requests`); every answer, in order."""

    async def scenario() -> list[httpx.Response]:
        answers: list[httpx.Response] = []
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30.0) as http:

            async def worker() -> None:
                while len(answers) < requests and not any(a.status_code == 429 for a in answers[-100:]):
                    answers.append(await http.get(Routes.STATUS, params={"path": "/"}))

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        return answers

    return asyncio.run(scenario())


def write_file(cluster: MiniCluster, path: str, data: bytes, replication: int) -> None:
    with cluster.client() as fs:
        fs.mkdirs(path.rsplit("/", 1)[0] or "/")
        fs.write_bytes(path, data, replication=replication)


def read_file(cluster: MiniCluster, path: str) -> bytes:
    with cluster.client() as fs:
        return fs.read_bytes(path)


def first_block(cluster: MiniCluster, path: str) -> LocatedBlock:
    with cluster.client() as fs:
        return fs.block_locations(path).blocks[0]


@contextlib.contextmanager
def held_read(cluster: MiniCluster, block: LocatedBlock, node_url: str) -> Iterator[httpx.Response]:
    """A read of `block` that takes a transfer slot on `node_url` and keeps it until the block exits:
    the response is opened and never read."""
    params = {"gen_stamp": block.block.gen_stamp}
    with (
        httpx.Client(base_url=node_url, timeout=30.0, event_hooks={"request": [cluster.add_block_token]}) as http,
        http.stream("GET", f"/v1/blocks/{block.block.block_id}", params=params) as response,
    ):
        assert response.status_code == 200
        yield response


def raw_read(cluster: MiniCluster, block: LocatedBlock, node_url: str) -> httpx.Response:
    with httpx.Client(base_url=node_url, timeout=30.0, event_hooks={"request": [cluster.add_block_token]}) as http:
        params = {"gen_stamp": block.block.gen_stamp, "length": 1}
        return http.get(f"/v1/blocks/{block.block.block_id}", params=params)


def error_body(response: httpx.Response) -> ErrorBody:
    return ErrorBody.model_validate(response.json())


# --- the NameNode's rate limit -----------------------------------------------------------------


def test_a_client_over_its_rate_gets_429_and_another_client_is_served(limited: MiniCluster) -> None:
    answers = hammer(limited.url, {HEADER_USER: "hog"})
    refused = next(a for a in answers if a.status_code == 429)
    assert int(refused.headers["Retry-After"]) >= 1
    body = error_body(refused)
    assert body.code is ErrorCode.TOO_MANY_REQUESTS
    assert body.retry_after_s is not None and 0 < body.retry_after_s <= 1
    assert {a.status_code for a in answers} <= {200, 429}
    # The hog's bucket is empty right now; another user's is full.
    quiet = httpx.get(limited.url + Routes.STATUS, params={"path": "/"}, headers={HEADER_USER: "quiet"})
    assert quiet.status_code == 200


def test_the_sdk_backs_off_on_429_and_every_call_succeeds(limited: MiniCluster) -> None:
    before = metric(limited.url, "dfs_namenode_rate_limited_requests_total")

    async def scenario() -> list[str]:
        async with AsyncDFSClient(limited.url, user="eager", ca_file=limited.ca_file) as fs:
            statuses = await asyncio.gather(*(fs.status("/") for _ in range(4 * RATE)))
        return [status.path for status in statuses]

    assert asyncio.run(scenario()) == ["/"] * (4 * RATE)
    assert metric(limited.url, "dfs_namenode_rate_limited_requests_total") > before  # it was refused, and retried


def test_datanode_protocol_routes_are_never_rate_limited(limited: MiniCluster) -> None:
    """DataNodes sign their requests, so they share the key `cluster@<ip>`: a client spending that
    key's budget (with a bogus signature) must not stop heartbeats."""
    labels = {"route": Routes.HEARTBEAT, "method": "POST"}

    def heartbeats(status: str) -> float:
        return metric(limited.url, "dfs_namenode_requests_total", status=status, **labels)

    ok_before = heartbeats("2xx")

    async def scenario() -> list[int]:
        statuses: list[int] = []
        done = False
        async with httpx.AsyncClient(base_url=limited.url, headers={HEADER_CLUSTER_AUTH: "v1:0:00"}) as http:

            async def worker() -> None:
                while not done and len(statuses) < 100_000:
                    statuses.append((await http.get(Routes.STATUS, params={"path": "/"})).status_code)

            workers = [asyncio.ensure_future(worker()) for _ in range(10)]
            try:
                # Hammer until the key's budget is spent, then until two heartbeats got through
                # while it stays spent (they come every 0.5 s).
                spent_at: float | None = None
                for _ in range(1200):
                    if spent_at is None:
                        if 429 in statuses:
                            spent_at = await asyncio.to_thread(heartbeats, "2xx")
                    elif await asyncio.to_thread(heartbeats, "2xx") >= spent_at + 2:
                        break
                    await asyncio.sleep(0.05)
            finally:
                done = True
                await asyncio.gather(*workers)
        return statuses

    statuses = asyncio.run(scenario())
    assert 429 in statuses  # the key's budget was spent while the heartbeats came in
    assert heartbeats("2xx") >= ok_before + 2
    assert heartbeats("4xx") == 0


# --- request and block size limits -------------------------------------------------------------


def test_an_oversized_json_body_gets_413(limited: MiniCluster) -> None:
    body = b'{"path": "/x", "junk": "' + b"x" * (100 * 1024) + b'"}'
    headers = {"content-type": "application/json", HEADER_USER: "sizer"}
    declared = httpx.post(limited.url + Routes.MKDIRS, content=body, headers=headers)
    assert declared.status_code == 413
    assert error_body(declared).code is ErrorCode.REQUEST_TOO_LARGE

    def chunked() -> Iterator[bytes]:
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    streamed = httpx.post(limited.url + Routes.MKDIRS, content=chunked(), headers=headers)
    assert "content-length" not in {k.lower() for k in streamed.request.headers}
    assert streamed.status_code == 413
    assert error_body(streamed).code is ErrorCode.REQUEST_TOO_LARGE
    # A normal request on the same server still works.
    ok = httpx.post(limited.url + Routes.MKDIRS, json={"path": "/"}, headers=headers)
    assert ok.status_code == 200, ok.text  # mkdirs of an existing directory: allowed for anyone


def test_create_refuses_a_block_size_over_the_maximum(limited: MiniCluster) -> None:
    with limited.client() as fs:
        with pytest.raises(InvalidArgumentError, match="exceeds the maximum"):
            fs.write_bytes(f"/big-blocks-{uuid.uuid4().hex[:6]}", b"x", block_size=2 * MIB)
        assert fs.info().max_block_size == MIB


def test_a_datanode_refuses_a_replica_past_its_maximum_and_keeps_serving(limited: MiniCluster) -> None:
    node = limited.datanodes[0]
    block_id = 10**14 + 7
    header = WriteBlockHeader(block_id=block_id, gen_stamp=1, stage=WriteStage.CREATE, final=True)
    prefix, data = encode_packet(0, os.urandom(CHUNK), CHUNK)
    prefix2, data2 = encode_packet(CHUNK, os.urandom(CHUNK), CHUNK)
    with httpx.Client(base_url=node.url or "", timeout=30.0, event_hooks={"request": [limited.add_block_token]}) as dn:
        answer = dn.post(
            f"/v1/blocks/{block_id}",
            content=prefix + bytes(data) + prefix2 + bytes(data2),
            headers={HEADER_WRITE: encode_header_model(header)},
        )
    assert answer.status_code == 413, answer.text
    assert error_body(answer).code is ErrorCode.REQUEST_TOO_LARGE
    assert limited.replica_file(node, block_id) is None
    # Files within the limit still go through this node.
    path = f"/small-{uuid.uuid4().hex[:6]}"
    payload = os.urandom(3 * CHUNK + 5)  # several 64 KiB blocks
    write_file(limited, path, payload, replication=1)
    assert read_file(limited, path) == payload


# --- hostile packet headers --------------------------------------------------------------------


def hostile_packets() -> dict[str, tuple[dict[str, object], bytes]]:
    """(write header changes, body) pairs that must each get a 4xx, never a 500 or an allocation."""
    good_prefix, good_data = encode_packet(0, b"x" * 100, CHUNK)

    def raw_header(offset: int = 0, data_len: int = 100, ck_len: int = 8, magic: bytes = PACKET_MAGIC) -> bytes:
        return PACKET_HEADER.pack(magic, PACKET_VERSION, 0, 0, offset, data_len, ck_len)

    return {
        "bad magic": ({}, raw_header(magic=b"EVIL") + b"\0" * 108),
        "4 GiB packet announced": ({}, raw_header(data_len=2**32 - 1, ck_len=8) + b"\0" * 1000),
        "huge checksum length": ({}, raw_header(ck_len=2**32 - 1) + b"\0" * 1000),
        "packet at a huge offset": ({}, raw_header(offset=2**64 - 1) + good_prefix[PACKET_HEADER.size :] + good_data),
        "segment at a huge offset": ({"stage": WriteStage.CONTINUE, "offset": MAX_INT64}, good_prefix + good_data),
        "body ends inside a packet": ({}, good_prefix + bytes(good_data)[:50]),
    }


@pytest.mark.parametrize("case", list(hostile_packets()))
def test_hostile_write_headers_get_4xx_and_the_datanode_keeps_serving(cluster: MiniCluster, case: str) -> None:
    changes, body = hostile_packets()[case]
    node = cluster.datanodes[0]
    block_id = 10**14 + int(uuid.uuid4().int % 10**9)
    header = WriteBlockHeader(block_id=block_id, gen_stamp=1, stage=WriteStage.CREATE, final=True)
    header = header.model_copy(update=changes)
    with httpx.Client(base_url=node.url or "", timeout=30.0, event_hooks={"request": [cluster.add_block_token]}) as dn:
        answer = dn.post(
            f"/v1/blocks/{block_id}", content=bytes(body), headers={HEADER_WRITE: encode_header_model(header)}
        )
        assert 400 <= answer.status_code < 500, answer.text
        assert error_body(answer).errno > 0
        assert dn.get("/healthz").status_code == 200
    assert cluster.replica_file(node, block_id) is None


def test_a_write_header_offset_past_int64_is_refused(cluster: MiniCluster) -> None:
    node = cluster.datanodes[0]
    header = '{"block_id": 5, "gen_stamp": 1, "stage": "continue", "offset": 99999999999999999999999}'
    with httpx.Client(base_url=node.url or "", timeout=30.0, event_hooks={"request": [cluster.add_block_token]}) as dn:
        answer = dn.post("/v1/blocks/5", content=b"", headers={HEADER_WRITE: header})
    assert answer.status_code == 400
    assert error_body(answer).code is ErrorCode.INVALID_ARGUMENT


# --- a DataNode at max_transfers ---------------------------------------------------------------


@pytest.fixture(scope="module")
def big_file(busy: MiniCluster) -> tuple[str, bytes]:
    """One block with a replica on both DataNodes, big enough to hold a stream open on either."""
    path = "/held/big"
    data = os.urandom(HELD_FILE_SIZE)
    write_file(busy, path, data, replication=2)
    return path, data


def test_a_second_concurrent_read_gets_503_busy_until_the_first_ends(
    busy: MiniCluster, big_file: tuple[str, bytes]
) -> None:
    block = first_block(busy, big_file[0])
    node_url = block.locations[0].url
    with held_read(busy, block, node_url):
        second = raw_read(busy, block, node_url)
        assert second.status_code == 503
        assert second.headers["Retry-After"] == "1"
        body = error_body(second)
        assert body.code is ErrorCode.BUSY
        assert body.retry_after_s == pytest.approx(0.5)
    # The slot is handed back once the first reader is gone (however it left).
    wait_until(lambda: raw_read(busy, block, node_url).status_code == 200, 30, "the slot to be released")


def test_a_read_tries_the_other_replica_while_one_is_busy(busy: MiniCluster, big_file: tuple[str, bytes]) -> None:
    path, data = big_file
    block = first_block(busy, path)
    held = block.locations[0]
    before = refused_by_datanodes(busy)
    with held_read(busy, block, held.url):
        # The busy replica is asked first and refuses; the read completes on the other one meanwhile.
        assert read_with_replica_first(busy, path, held.id) == data
    assert refused_by_datanodes(busy) > before


def test_a_read_of_a_busy_single_replica_backs_off_and_completes(
    busy: MiniCluster, big_file: tuple[str, bytes]
) -> None:
    path = f"/held/single-{uuid.uuid4().hex[:6]}"
    data = os.urandom(HELD_FILE_SIZE)
    write_file(busy, path, data, replication=1)
    block = first_block(busy, path)
    before = refused_by_datanodes(busy)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        with held_read(busy, block, block.locations[0].url):
            reading = pool.submit(read_file, busy, path)
            wait_until(lambda: refused_by_datanodes(busy) > before, 30, "the reader to be refused")
        assert reading.result(timeout=60) == data


def test_a_write_whose_first_node_is_busy_backs_off_and_completes(
    busy: MiniCluster, big_file: tuple[str, bytes]
) -> None:
    """Both DataNodes busy: the writer waits instead of excluding healthy nodes, and nothing is lost."""
    block = first_block(busy, big_file[0])
    path = f"/held/write-{uuid.uuid4().hex[:6]}"
    data = os.urandom(3 * MIB)
    before = refused_by_datanodes(busy)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        with contextlib.ExitStack() as holds:
            for node in block.locations:
                holds.enter_context(held_read(busy, block, node.url))
            writing = pool.submit(write_file, busy, path, data, 1)
            wait_until(lambda: refused_by_datanodes(busy) > before, 30, "the writer to be refused")
        writing.result(timeout=60)
    assert read_file(busy, path) == data


def test_slots_are_handed_back_so_an_idle_node_admits_at_once(busy: MiniCluster) -> None:
    """After the tests above (held, refused and finished transfers), no slot has leaked."""
    path = f"/held/free-{uuid.uuid4().hex[:6]}"
    data = os.urandom(CHUNK)
    before = refused_by_datanodes(busy)
    write_file(busy, path, data, replication=2)
    assert read_file(busy, path) == data
    assert refused_by_datanodes(busy) == before


# --- input validation audit: numbers past int64 are 400s, never database overflows ---------


@pytest.mark.parametrize("route", [Routes.COMPLETE, Routes.ADD_BLOCK, Routes.ABANDON_BLOCK, Routes.RECOVER_LEASE])
def test_a_file_id_past_int64_is_an_invalid_argument(cluster: MiniCluster, route: str) -> None:
    body: dict[str, object] = {"path": "/x", "file_id": 10**30, "client_name": "c"}
    if route == Routes.ABANDON_BLOCK:
        body["block"] = {"block_id": 1, "gen_stamp": 1}
    answer = httpx.post(cluster.url + route, json=body, headers={HEADER_USER: "auditor"}, verify=cluster.verify)
    assert answer.status_code == 400, answer.text
    assert error_body(answer).code is ErrorCode.INVALID_ARGUMENT


def test_a_webhdfs_number_past_int64_is_an_illegal_argument(cluster: MiniCluster) -> None:
    query = f"op=GETFILEBLOCKLOCATIONS&user.name=auditor&offset={10**30}"
    answer = httpx.get(f"{cluster.url}/webhdfs/v1/?{query}", verify=cluster.verify)
    assert answer.status_code == 400, answer.text
    assert answer.json()["RemoteException"]["exception"] == "IllegalArgumentException"
