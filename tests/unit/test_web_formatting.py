"""Number formats and SVG charts of the status pages (pure functions)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from server_common.web import charts
from server_common.web.formatting import (
    NOTHING,
    human_bytes,
    human_duration,
    human_rate,
    percent,
    permission_string,
    utc_time,
)

SVG = "{http://www.w3.org/2000/svg}"


def test_human_numbers() -> None:
    assert human_bytes(0) == "0 B"
    assert human_bytes(1023) == "1023 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(3 * 2**40) == "3.0 TiB"
    assert human_bytes(None) == NOTHING
    assert human_rate(125_000_000) == "125.0 MB/s"
    assert human_duration(4.25) == "4.2 s"
    assert human_duration(3725) == "1h 2m"
    assert human_duration(2 * 86400 + 3600) == "2d 1h"
    assert percent(1, 4) == 25.0
    assert percent(5, 0) == 0.0  # a node reporting no capacity yet
    assert permission_string(0o755, True) == "drwxr-xr-x"
    assert permission_string(0o1777, True) == "drwxrwxrwt"
    assert permission_string(0o640, False) == "-rw-r-----"
    assert utc_time(0) == "1970-01-01 00:00:00 UTC"


def test_capacity_bars_are_valid_svg_with_one_bar_per_node_and_escaped_labels() -> None:
    bars = [charts.CapacityBar("node<1>", 50, 100), charts.CapacityBar("DN-" + "x" * 40, 99, 100)]
    svg = ET.fromstring(str(charts.capacity_bars(bars)))
    fills = svg.findall(f"{SVG}rect[@class]")
    filled = [rect for rect in fills if "fill" in rect.get("class", "")]
    assert len(filled) == 2
    assert [rect.get("class") for rect in filled] == ["fill low", "fill high"]
    labels = [text.find(f"{SVG}title") for text in svg.iter(f"{SVG}text") if text.get("class") == "label"]
    assert [(title.text, title.tail) for title in labels if title is not None] == [
        ("node<1>", "node<1>"),  # escaped in the markup, parsed back
        ("DN-" + "x" * 40, "DN-" + "x" * (charts.LABEL_CHARS - 4) + "\u2026"),  # cut; the tooltip has it all
    ]


def test_throughput_lines_scale_to_the_peak() -> None:
    samples = [(0.0, 0.0, 0.0), (10.0, 100.0, 50.0), (20.0, 50.0, 100.0)]
    svg = ET.fromstring(str(charts.throughput_lines(samples)))
    lines = svg.findall(f"{SVG}polyline")
    assert [line.get("class") for line in lines] == ["line write", "line read"]
    write_points = [tuple(map(float, point.split(","))) for point in lines[0].get("points", "").split()]
    assert len(write_points) == 3
    top = min(y for _, y in write_points)
    read_points = [tuple(map(float, point.split(","))) for point in lines[1].get("points", "").split()]
    assert top == min(y for _, y in read_points)  # both peaks reach the top of the plot
    assert write_points[0][0] < write_points[1][0] < write_points[2][0]
    assert write_points[-1][0] == 640 - 10  # the newest sample sits at the right edge ("now")
    assert write_points[2][0] - write_points[0][0] < 10  # 20 s of a 1 h axis: a sliver
    old_and_new = [(0.0, 5.0, 5.0), (7200.0, 1.0, 1.0), (7210.0, 1.0, 1.0)]
    clipped = ET.fromstring(str(charts.throughput_lines(old_and_new))).findall(f"{SVG}polyline")[0]
    assert len(clipped.get("points", "").split()) == 2  # older than the window: not drawn
    empty = ET.fromstring(str(charts.throughput_lines([])))
    assert not empty.findall(f"{SVG}polyline")
