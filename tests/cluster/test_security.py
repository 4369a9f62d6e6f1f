"""Credentials on real processes: block access tokens on DataNodes, the cluster secret on the
DataNode protocol, and user tokens in token mode (docs/security.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from client.protocol.client_namenode import Routes
from client.protocol.common import HEADER_READ, HEADER_USER, HEADER_WRITE
from client.protocol.data_transfer import WriteBlockHeader, WriteStage, encode_header_model, encode_packet
from client.protocol.datanode_namenode import BlockReportRequest, HeartbeatRequest, RegisterRequest, ReportedReplica
from client.protocol.errors import UnauthenticatedError
from client.protocol.security import (
    BLOCK_TOKEN_PARAM,
    HEADER_BLOCK_TOKEN,
    HEADER_CLUSTER_AUTH,
    BlockAccessMode,
    cluster_request_key,
    generate_secret,
    sign_request,
)
from client.protocol.webhdfs import PREFIX
from tests.minicluster import MiniCluster, wait_until

pytestmark = pytest.mark.cluster

BLOCK = 256 * 1024
CHUNK = 64 * 1024


def _written_block(cluster: MiniCluster, path: str) -> tuple[str, int, int, bytes]:
    """(DataNode URL, block id, gen stamp, data) of a fresh one-block file."""
    data = os.urandom(BLOCK // 2)
    with cluster.client() as fs:
        fs.write_bytes(path, data, block_size=BLOCK)
        located = fs.block_locations(path).blocks[0]
    return located.locations[0].url, located.block.block_id, located.block.gen_stamp, data


def _read(url: str, block_id: int, gen_stamp: int, token: str | None, **params: str) -> httpx.Response:
    headers = {HEADER_BLOCK_TOKEN: token} if token is not None else {}
    return httpx.get(
        f"{url}/v1/blocks/{block_id}", params={"gen_stamp": gen_stamp, **params}, headers=headers, timeout=30
    )


def _refused(response: httpx.Response, mentions: str) -> None:
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["code"] == "INVALID_BLOCK_TOKEN", body
    assert mentions in body["message"], body


def test_block_reads_need_a_valid_token_for_that_block_and_mode(cluster: MiniCluster, remote_dir: str) -> None:
    url, block_id, gen_stamp, _ = _written_block(cluster, f"{remote_dir}/f")
    read = [BlockAccessMode.READ]
    _refused(_read(url, block_id, gen_stamp, None), "no block access token")
    _refused(_read(url, block_id, gen_stamp, "dfs1.garbage.garbage"), "invalid block access token")
    forged = cluster.block_token(block_id, read, secret=generate_secret())  # signed with another secret
    _refused(_read(url, block_id, gen_stamp, forged), "bad token signature")
    _refused(_read(url, block_id, gen_stamp, cluster.block_token(block_id + 1, read)), f"is for block {block_id + 1}")
    _refused(_read(url, block_id, gen_stamp, cluster.block_token(block_id, read, lifetime_s=-1)), "expired")
    write_only = cluster.block_token(block_id, [BlockAccessMode.WRITE])
    _refused(_read(url, block_id, gen_stamp, write_only), "not read")
    retired = cluster.block_token(block_id, read, key_epoch=int(time.time()) - 3 * 86400, lifetime_s=60)
    _refused(_read(url, block_id, gen_stamp, retired), "retired")
    # The checksum route is a read too.
    checksum = httpx.get(f"{url}/v1/blocks/{block_id}/checksum", params={"gen_stamp": gen_stamp}, timeout=30)
    _refused(checksum, "no block access token")

    good = cluster.block_token(block_id, read)
    answer = _read(url, block_id, gen_stamp, good)
    assert answer.status_code == 200 and HEADER_READ in answer.headers
    as_param = _read(url, block_id, gen_stamp, None, **{BLOCK_TOKEN_PARAM: good})
    assert as_param.status_code == 200, as_param.text


def test_the_namenode_hands_out_tokens_that_work(cluster: MiniCluster, remote_dir: str) -> None:
    path = f"{remote_dir}/f"
    _, _, _, data = _written_block(cluster, path)
    with cluster.client() as fs:
        located = fs.block_locations(path).blocks[0]
    assert located.token, "locations carry a block token"
    node = located.locations[0]
    answer = _read(node.url, located.block.block_id, located.block.gen_stamp, located.token)
    assert answer.status_code == 200
    other_block = cluster.block_token(located.block.block_id + 7, [BlockAccessMode.READ])
    _refused(_read(node.url, located.block.block_id, located.block.gen_stamp, other_block), "is for block")
    with cluster.client() as fs:
        assert fs.read_bytes(path) == data


def test_block_writes_need_a_write_token(cluster: MiniCluster) -> None:
    url = cluster.datanodes[0].url
    block_id = int.from_bytes(os.urandom(6), "big") + 10**12
    prefix, payload = encode_packet(0, b"x" * CHUNK, CHUNK)
    body = prefix + bytes(payload)

    def write(token: str | None, stage: WriteStage = WriteStage.CREATE) -> httpx.Response:
        header = WriteBlockHeader(block_id=block_id, gen_stamp=1, stage=stage, final=True)
        headers = {HEADER_WRITE: encode_header_model(header)}
        if token is not None:
            headers[HEADER_BLOCK_TOKEN] = token
        return httpx.post(f"{url}/v1/blocks/{block_id}", content=body, headers=headers, timeout=30)

    _refused(write(None), "no block access token")
    _refused(write(cluster.block_token(block_id, [BlockAccessMode.READ])), "not write")
    # A client's write token does not let it pose as a re-replication.
    _refused(write(cluster.block_token(block_id, [BlockAccessMode.WRITE]), WriteStage.REPLICATE), "not replicate")
    accepted = write(cluster.block_token(block_id, [BlockAccessMode.WRITE]))
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["length"] == CHUNK


def _signed(secret: str, route: str, model: object) -> dict[str, str]:
    content = model.model_dump_json().encode()  # type: ignore[attr-defined]
    return {
        "content-type": "application/json",
        HEADER_CLUSTER_AUTH: sign_request(cluster_request_key(secret), "POST", route, content),
    }


def test_only_holders_of_the_cluster_secret_speak_the_datanode_protocol(cluster: MiniCluster) -> None:
    fake = RegisterRequest(
        datanode_id="impostor-1", url="http://127.0.0.1:1", capacity=10**12, used=0, remaining=10**12, version="x"
    )
    report = BlockReportRequest(
        datanode_id=cluster.report().datanodes[0].id,
        report_id="forged",
        page=0,
        last=True,
        replicas=[ReportedReplica(block_id=123456789, gen_stamp=1, length=1)],
    )
    beat = HeartbeatRequest(datanode_id="impostor-1", capacity=1, used=0, remaining=1)
    for route, model in ((Routes.REGISTER, fake), (Routes.BLOCK_REPORT, report), (Routes.HEARTBEAT, beat)):
        content = model.model_dump_json()
        unsigned = httpx.post(cluster.url + route, content=content, headers={"content-type": "application/json"})
        assert unsigned.status_code == 401, unsigned.text
        assert unsigned.json()["code"] == "UNAUTHENTICATED"
        wrong = httpx.post(cluster.url + route, content=content, headers=_signed(generate_secret(), route, model))
        assert wrong.status_code == 401 and "cluster secret" in wrong.json()["message"], wrong.text
    # A signature covers the body: replaying a valid header with another body fails.
    headers = _signed(cluster.secret(), Routes.REGISTER, fake)
    tampered = fake.model_copy(update={"url": "http://127.0.0.1:2"}).model_dump_json()
    assert httpx.post(cluster.url + Routes.REGISTER, content=tampered, headers=headers).status_code == 401
    assert "impostor-1" not in {node.id for node in cluster.report().datanodes}


def test_a_datanode_without_the_secret_cannot_join(cluster: MiniCluster, tmp_path: Path) -> None:
    secret_file = tmp_path / "wrong.secret"
    secret_file.write_text(generate_secret())
    secret_file.chmod(0o600)
    before = {node.id for node in cluster.report().datanodes}
    node = cluster.add_datanode(wait=False, extra_args=["--cluster-secret-file", str(secret_file)])
    try:
        node.wait_ready()
        wait_until(lambda: "refused this node's cluster secret" in node.log_tail(200), 30, "a refused registration")
        assert {n.id for n in cluster.report().datanodes} == before
    finally:
        node.stop()
        cluster.datanodes.remove(node)


def test_secret_file_problems_stop_a_server_with_one_line(tmp_path: Path) -> None:
    loose = tmp_path / "loose.secret"
    loose.write_text(generate_secret())
    loose.chmod(0o644)
    cases = [
        (["--cluster-secret-file", str(tmp_path / "missing")], "cannot read the cluster secret file"),
        (["--cluster-secret-file", str(loose)], "accessible by other users"),
        ([], "no cluster secret"),
    ]
    for extra, message in cases:
        result = subprocess.run(
            [sys.executable, "-m", "datanode", "--data-dir", str(tmp_path / "dn"), "--port", "0", *extra],
            capture_output=True,
            text=True,
            timeout=60,
            env={k: v for k, v in os.environ.items() if not k.startswith("DFS_DATANODE_")},
        )
        assert result.returncode == 1, result
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr


# --- token mode --------------------------------------------------------------------------------


@pytest.fixture()
def token_cluster(make_cluster: Callable[..., MiniCluster]) -> MiniCluster:
    return make_cluster(datanodes=3, namenode_args=["--auth-mode", "token"])


def test_token_mode_refuses_requests_without_a_valid_token(token_cluster: MiniCluster, tmp_path: Path) -> None:
    cluster = token_cluster
    status = httpx.get(cluster.url + Routes.STATUS, params={"path": "/"}, headers={HEADER_USER: "root"})
    assert status.status_code == 401 and status.json()["code"] == "UNAUTHENTICATED", status.text
    with cluster.client(token="") as fs, pytest.raises(UnauthenticatedError, match="requires a token"):
        fs.status("/")
    with cluster.client(token="dfs1.bad.bad") as fs, pytest.raises(UnauthenticatedError, match="invalid token"):
        fs.status("/")

    # The operator bootstraps with the cluster secret, then users work with their tokens.
    with cluster.client(token="", secret_file=cluster.secret_file) as admin:
        admin.mkdirs("/home/alice")
        admin.set_owner("/home/alice", "alice")
        issued = admin.create_token("alice", ttl_s=600, description="test")
    assert issued.info.user == "alice" and issued.info.issued_by == admin.user  # the superuser
    with cluster.client(token=issued.token, user="mallory") as alice:
        alice.write_bytes("/home/alice/notes", b"hello")
        assert alice.status("/home/alice/notes").owner == "alice"  # the token decides, not the header
        assert alice.read_bytes("/home/alice/notes") == b"hello"
        assert [info.token_id for info in alice.list_tokens()] == [issued.info.token_id]
        with pytest.raises(PermissionError):
            alice.create_token("bob")  # only the superuser issues tokens for others
        mine = alice.create_token(ttl_s=60)
        assert mine.info.user == "alice"

    expired_soon = None
    with cluster.client(token="", secret_file=cluster.secret_file) as admin:
        expired_soon = admin.create_token("alice", ttl_s=1)
        admin.revoke_token(issued.info.token_id)
    with cluster.client(token=issued.token) as alice, pytest.raises(UnauthenticatedError, match="revoked"):
        alice.status("/")
    wait_until(lambda: time.time() * 1000 > expired_soon.info.expires_ms, 10, "the short token to expire")
    with cluster.client(token=expired_soon.token) as alice, pytest.raises(UnauthenticatedError, match="expired"):
        alice.status("/")


def test_token_mode_through_webhdfs_and_the_cli(token_cluster: MiniCluster) -> None:
    cluster = token_cluster

    def dfs(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "DFS_NAMENODE": cluster.url, "DFS_TOKEN": ""}
        return subprocess.run(
            [sys.executable, "-m", "client.cli", *args], capture_output=True, text=True, env=env, timeout=120
        )

    created = dfs("token", "create", "--user", "carol", "--ttl", "10m", "--secret-file", str(cluster.secret_file))
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    refused = dfs("ls", "/")
    assert refused.returncode == 1 and "requires a token" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    with cluster.client(token="", secret_file=cluster.secret_file) as admin:
        admin.mkdirs("/carol")
        admin.set_owner("/carol", "carol")
    listed = dfs("--token", token, "ls", "/")
    assert listed.returncode == 0 and "carol" in listed.stdout, listed.stderr

    web = cluster.url + PREFIX
    anonymous = httpx.get(web + "/", params={"op": "GETFILESTATUS", "user.name": "root"})
    assert anonymous.status_code == 401
    assert anonymous.json()["RemoteException"]["exception"] == "SecurityException"
    created_file = httpx.put(web + "/carol/w.txt", params={"op": "CREATE", "delegation": token}, follow_redirects=False)
    assert created_file.status_code == 307
    location = created_file.headers["location"]
    assert f"delegation={token}" in location  # the DataNode acts with the caller's token
    written = httpx.put(location, content=b"via webhdfs", timeout=30)
    assert written.status_code == 201, written.text
    opened = httpx.get(web + "/carol/w.txt", params={"op": "OPEN", "delegation": token}, follow_redirects=True)
    assert opened.status_code == 200 and opened.content == b"via webhdfs"
    status = httpx.get(
        web + "/carol/w.txt", params={"op": "GETFILESTATUS"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert status.json()["FileStatus"]["owner"] == "carol"

    fetched = httpx.get(web + "/", params={"op": "GETDELEGATIONTOKEN", "delegation": token})
    assert fetched.status_code == 200, fetched.text
    second = fetched.json()["Token"]["urlString"]
    listing = httpx.get(web + "/carol", params={"op": "LISTSTATUS", "delegation": second})
    assert listing.status_code == 200 and listing.json()["FileStatuses"]["FileStatus"][0]["pathSuffix"] == "w.txt"
    cancel = httpx.put(web + "/", params={"op": "CANCELDELEGATIONTOKEN", "token": second, "delegation": token})
    assert cancel.status_code == 200, cancel.text
    again = httpx.get(web + "/carol", params={"op": "LISTSTATUS", "delegation": second})
    assert again.status_code == 401 and "revoked" in again.json()["RemoteException"]["message"]

    listed_tokens = dfs("--token", token, "token", "list", "--json")
    assert listed_tokens.returncode == 0, listed_tokens.stderr
    token_id = next(t["token_id"] for t in json.loads(listed_tokens.stdout) if not t["revoked"])
    revoked = dfs("--token", token, "token", "revoke", token_id)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout, revoked.stderr
    after = dfs("--token", token, "ls", "/")
    assert after.returncode == 1 and "revoked" in after.stderr, after.stderr
    bad_ttl = dfs("--token", token, "token", "create", "--ttl", "soon")
    assert bad_ttl.returncode != 0 and "Traceback" not in bad_ttl.stderr


def test_streams_outliving_their_block_tokens_carry_on(make_cluster: Callable[..., MiniCluster]) -> None:
    """A reader and a writer held open past the token lifetime fetch fresh tokens, lose no replica."""
    cluster = make_cluster(datanodes=3, namenode_args=["--block-token-lifetime", "10", "--block-key-rotation", "10"])
    mib = 1024 * 1024
    big = os.urandom(4 * mib)
    first, second = os.urandom(2 * mib), os.urandom(2 * mib)
    with cluster.client(segment_size=mib) as fs:
        fs.write_bytes("/read-me", big, block_size=8 * mib, replication=3)
        writer = fs.open("/slow", "wb", block_size=8 * mib, replication=3)
        writer.write(first)  # whole segments leave now, under a fresh token
        reader = fs.open("/read-me", "rb")
        assert reader.read(CHUNK) == big[:CHUNK]
        issued = time.time()
        wait_until(lambda: time.time() > issued + 12, 20, "the block tokens to expire")
        writer.write(second)  # the pending segment goes out with the expired token
        writer.close()
        reader.seek(3 * mib)  # a new stream: its old token is refused, and a fresh one fetched
        assert reader.read() == big[3 * mib :]
        reader.close()
        assert fs.read_bytes("/slow") == first + second
        located = fs.block_locations("/slow").blocks
        assert len(located) == 1 and len(located[0].locations) == 3  # no node was dropped for an expiry
    logs = "".join(node.log_tail(400) for node in cluster.datanodes)
    refusals = [line for line in logs.splitlines() if "block token refused" in line]
    assert any("mode=read" in line for line in refusals) and any("mode=write" in line for line in refusals), refusals
