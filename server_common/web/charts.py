"""Inline SVG charts: capacity bars and a throughput line, drawn on the server (no scripts, no CDN)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from server_common.web.formatting import human_bytes, human_rate, percent

#: Longer labels (DataNode ids are 39 characters) are cut, with the whole label as a tooltip.
LABEL_CHARS = 24


@dataclass(frozen=True)
class CapacityBar:
    label: str
    used: int
    capacity: int


def capacity_bars(bars: Sequence[CapacityBar], width: int = 640, row_height: int = 22) -> Markup:
    """One horizontal bar per node: used share of its capacity, labelled with both."""
    label_width = 200
    bar_width = width - label_width - 150
    height = max(1, len(bars)) * row_height + 4
    parts = [
        f'<svg class="chart" role="img" aria-label="capacity per node" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for row, bar in enumerate(bars):
        y = row * row_height + 2
        share = percent(bar.used, bar.capacity)
        filled = bar_width * min(share, 100.0) / 100
        level = "high" if share >= 90 else "mid" if share >= 75 else "low"
        label = bar.label if len(bar.label) <= LABEL_CHARS else bar.label[: LABEL_CHARS - 1] + "\u2026"
        parts.append(
            f'<text x="0" y="{y + 15}" class="label"><title>{escape(bar.label)}</title>{escape(label)}</text>'
            f'<rect x="{label_width}" y="{y + 3}" width="{bar_width}" height="14" class="track"/>'
            f'<rect x="{label_width}" y="{y + 3}" width="{filled:.1f}" height="14" class="fill {level}"/>'
            f'<text x="{label_width + bar_width + 8}" y="{y + 15}" class="value">'
            f"{share:.1f}% of {escape(human_bytes(bar.capacity))}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def throughput_lines(
    samples: Sequence[tuple[float, float, float]], width: int = 640, height: int = 160, window_s: float = 3600.0
) -> Markup:
    """Write and read rate over the last `window_s` from (bucket start, written B/s, read B/s) samples."""
    left, bottom, top = 70, 20, 10
    plot_w, plot_h = width - left - 10, height - bottom - top
    # The x axis is always the last `window_s`: a young cluster's samples sit at the right edge.
    start = samples[-1][0] - window_s if samples else 0.0
    shown = [sample for sample in samples if sample[0] >= start]
    peak = max([max(w, r) for _, w, r in shown] + [1.0])
    parts = [
        f'<svg class="chart" role="img" aria-label="throughput over time" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" class="track"/>',
        f'<text x="0" y="{top + 10}" class="value">{escape(human_rate(peak))}</text>',
        f'<text x="0" y="{top + plot_h}" class="value">0</text>',
    ]
    if len(shown) >= 2:

        def points(column: int) -> str:
            return " ".join(
                f"{left + plot_w * (sample[0] - start) / window_s:.1f},{top + plot_h * (1 - sample[column] / peak):.1f}"
                for sample in shown
            )

        parts.append(f'<polyline points="{points(1)}" class="line write"/>')
        parts.append(f'<polyline points="{points(2)}" class="line read"/>')
        parts.append(f'<text x="{left}" y="{height - 4}" class="value">{window_s / 60:.0f} min ago</text>')
        parts.append(f'<text x="{width - 40}" y="{height - 4}" class="value">now</text>')
    else:
        parts.append(f'<text x="{left + 10}" y="{top + plot_h / 2}" class="label">no samples yet</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
