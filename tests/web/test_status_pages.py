"""The operator pages in a real headless Chromium against a real cluster: the numbers match the
JSON twins, the links lead from the overview to a DataNode, a file, its blocks and their replicas,
and a killed DataNode shows as stale, then dead, while under-replication rises and heals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page

from client.local_cluster import wait_until
from tests.minicluster import MiniCluster


def api(cluster: MiniCluster, route: str) -> Any:
    response = httpx.get(cluster.url + route, timeout=30)
    response.raise_for_status()
    return response.json()


def card_value(page: Page, card_id: str) -> str:
    return page.locator(f"#{card_id} .v").inner_text().strip()


def as_int(text: str) -> int:
    return int(text.replace(",", ""))


def test_overview_shows_what_the_api_reports(
    cluster: MiniCluster, page: Page, remote_dir: str, screenshot_dir: Path
) -> None:
    with cluster.client() as fs:
        fs.write_bytes(f"{remote_dir}/one.bin", b"1" * 4_000_000)
        assert fs.read_bytes(f"{remote_dir}/one.bin") == b"1" * 4_000_000

    def traffic_charted() -> bool:
        samples = api(cluster, "/api/throughput")["samples"]
        return len(samples) >= 2 and any(s["write_bytes_per_s"] > 0 for s in samples)

    wait_until(traffic_charted, 30, "heartbeats to bring the write into the throughput history")
    page.goto(cluster.url + "/")
    overview = api(cluster, "/api/overview")
    assert page.locator("#cluster-id").inner_text() == overview["cluster_id"]
    assert page.locator("#version").inner_text() == overview["version"]
    for card, field in (("files", "files"), ("directories", "directories"), ("blocks", "blocks")):
        assert as_int(card_value(page, card)) == overview[field], card
    assert as_int(card_value(page, "missing-blocks")) == overview["missing_blocks"] == 0
    assert (
        as_int(card_value(page, "datanodes-live")) == overview["datanodes_by_state"]["live"] == len(cluster.datanodes)
    )
    assert "off" in page.locator("#safe-mode").inner_text()
    assert page.locator("svg[aria-label='capacity per node'] rect.fill").count() == len(cluster.datanodes)
    assert page.locator("svg[aria-label='throughput over time'] polyline").count() == 2  # written, read
    assert page.locator("meta[http-equiv=refresh]").count() == 1  # the page refreshes itself
    assert page.locator("link[rel=stylesheet], script[src], img[src^=http]").count() == 0  # nothing from outside
    page.screenshot(path=screenshot_dir / "overview.png", full_page=True)


def test_links_lead_from_overview_to_datanode_file_and_replicas(
    cluster: MiniCluster, page: Page, remote_dir: str, screenshot_dir: Path
) -> None:
    data = bytes(range(256)) * 2048  # 512 KiB
    with cluster.client() as fs:
        fs.write_bytes(f"{remote_dir}/data file.bin", data)
        block = fs.block_locations(f"{remote_dir}/data file.bin").blocks[0]
    page.goto(cluster.url + "/")
    page.click("text=All DataNodes")
    rows = page.locator("#datanodes tbody tr")
    listed = api(cluster, "/api/datanodes")["datanodes"]
    assert rows.count() == len(listed)
    assert [row.get_attribute("data-datanode") for row in rows.all()] == [n["node"]["id"] for n in listed]
    page.screenshot(path=screenshot_dir / "datanodes.png", full_page=True)

    page.click("#datanodes thead a[data-sort=used]")
    assert "sort=used" in page.url
    used = [float(cell.inner_text().rstrip("%")) for cell in page.locator("#datanodes td.used-pct").all()]
    assert used == sorted(used)

    first = listed[0]["node"]
    page.click(f"#datanodes tr[data-datanode='{first['id']}'] a")
    page.wait_for_selector("#node-id")
    assert page.locator("#node-id").inner_text() == first["id"]
    info = httpx.get(first["url"] + "/api/status", timeout=30).json()
    assert page.locator("#replicas").get_attribute("data-value") == str(info["replicas"])
    page.screenshot(path=screenshot_dir / "datanode.png", full_page=True)

    page.goto(cluster.url + "/browse/")
    for name in remote_dir.strip("/").split("/"):
        page.click(f"#listing tr[data-name='{name}'] a")
    page.click("#listing tr[data-name='data file.bin'] a")
    page.wait_for_selector("#file-props")
    assert page.locator("#file-length").get_attribute("data-value") == str(len(data))
    assert "healthy" in page.locator("#file-health").inner_text()
    row = page.locator(f"#blocks tr[data-block='{block.block.block_id}']")
    holders = {link.get_attribute("data-datanode") for link in row.locator("a.replica").all()}
    assert holders == {location.id for location in block.locations}
    page.screenshot(path=screenshot_dir / "file.png", full_page=True)

    download = page.locator("#download").get_attribute("href")
    assert download is not None
    assert page.request.get(cluster.url + download).body() == data  # NameNode redirect, DataNode stream

    replica = row.locator("a.replica").first
    holder = replica.get_attribute("data-datanode")
    replica.click()
    page.wait_for_selector("#node-id")
    assert page.locator("#node-id").inner_text() == holder


def test_health_and_events_pages(cluster: MiniCluster, page: Page, screenshot_dir: Path) -> None:
    page.goto(cluster.url + "/health")
    health = api(cluster, "/api/health")
    assert as_int(card_value(page, "fsck-blocks")) == health["fsck"]["blocks"]
    assert as_int(card_value(page, "fsck-missing")) == health["fsck"]["missing"]
    page.screenshot(path=screenshot_dir / "health.png", full_page=True)
    page.goto(cluster.url + "/events")
    kinds = {row.get_attribute("data-kind") for row in page.locator("#events tbody tr[data-kind]").all()}
    assert "datanode_registered" in kinds
    assert kinds <= {event["kind"] for event in api(cluster, "/api/events?limit=200")["events"]}
    page.screenshot(path=screenshot_dir / "events.png", full_page=True)


def test_bad_paths_get_an_error_page_not_a_traceback(cluster: MiniCluster, page: Page) -> None:
    response = page.goto(cluster.url + "/browse/no/such/file")
    assert response is not None and response.status == 404
    assert "FILE_NOT_FOUND" in page.locator("#error").inner_text()
    assert httpx.get(cluster.url + "/api/browse/no/such/file").json()["code"] == "FILE_NOT_FOUND"
    assert httpx.get(cluster.url + "/api/datanodes?sort=nonsense").status_code == 400
    malformed = httpx.get(cluster.url + "/browse/a//b")  # an empty path component
    assert malformed.status_code == 400 and "INVALID_PATH" in malformed.text and "Traceback" not in malformed.text


def node_state(page: Page, url: str, node_id: str) -> str:
    page.goto(url + "/datanodes")
    return page.locator(f"#datanodes tr[data-datanode='{node_id}'] .state-cell").inner_text().strip()


def under_replicated(page: Page, url: str) -> int:
    page.goto(url + "/")
    return as_int(card_value(page, "under-replicated"))


def test_a_killed_datanode_goes_stale_then_dead_and_the_cluster_heals(make_cluster: Any, page: Page) -> None:
    # A 1 MB/s recovery budget keeps the under-replicated blocks in view for a few seconds.
    cluster: MiniCluster = make_cluster(datanodes=4, namenode_args=["--replication-bandwidth", "1"])
    with cluster.client() as fs:
        for index in range(4):
            fs.write_bytes(f"/heal/f{index}", bytes([index]) * 2_000_000, replication=3)
        victim_id = fs.block_locations("/heal/f0").blocks[0].locations[0].id
    victim = cluster.node_by_id(victim_id)
    assert node_state(page, cluster.url, victim_id) == "live"
    cluster.kill_datanode(victim)

    seen: list[str] = []

    def state_is(wanted: str) -> bool:
        seen.append(node_state(page, cluster.url, victim_id))
        return seen[-1] == wanted

    wait_until(lambda: state_is("stale"), 30, "the page to show the killed DataNode stale")
    wait_until(lambda: state_is("dead"), 30, "the page to show the killed DataNode dead")
    assert seen.index("stale") < seen.index("dead")
    counts: list[int] = []

    def healed() -> bool:
        counts.append(under_replicated(page, cluster.url))
        return counts[-1] == 0 and max(counts) > 0

    wait_until(healed, 60, "under-replicated blocks to rise on the page and fall back to 0")
    assert card_value(page, "datanodes-dead") == "1"
