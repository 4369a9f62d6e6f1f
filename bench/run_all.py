#!/usr/bin/env python3
"""Every benchmark of issue #10 in one run, written out as one markdown report.

    .venv/bin/python bench/run_all.py [--out FILE] [--quick] [--postgres URL] [--skip fuse,metadata,...]

Runs, one after another on this machine (each starts and stops its own cluster):

  throughput   bench/throughput.py at replication 1 and 3, with 1 and 4 client processes, each run
               beside its raw-disk and raw-HTTP ceilings
  metadata     bench/metadata.py at 1, 8 and 32 clients on SQLite (synchronous=FULL), and on
               PostgreSQL too with --postgres, beside the empty-endpoint ceiling
  fuse         bench/fuse.py: the shared fsbench.py on our mount and on a local directory

then prints (or writes to --out) the machine, one table per benchmark, and the issue's targets with
the measured figure beside each. The MooseFS and Python-FUSE-passthrough figures in the FUSE table
were measured on this kind of machine with the same fsbench.py (../shared/bench/README.md); they are
references, not part of this run. `--quick` shrinks every size for a smoke run of the whole suite.
No assertions: the figures are noisy, the ratios within one run are what to compare.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
GB = 1e9

# ../shared/bench/README.md: fsbench.py, 1 GiB + 2,000 x 4 KiB files, medians of 5 rounds, 2 cores.
FUSE_REFERENCES: dict[str, dict[str, float]] = {
    "MooseFS 3.0, 3 chunkservers, goal 3": {
        "seq_write_MBps": 164,
        "seq_read_MBps": 672,
        "small_create_ops": 665,
        "stat_ops_cold": 8_800,
        "listdir_ms": 2.3,
        "small_read_ops": 1_900,
        "delete_ops": 4_300,
    },
    "Python FUSE passthrough (fusepy, big_writes)": {
        "seq_write_MBps": 602,
        "seq_read_MBps": 668,
        "small_create_ops": 2_070,
        "stat_ops_cold": 12_500,
        "listdir_ms": 4.5,
        "small_read_ops": 2_310,
        "delete_ops": 5_370,
    },
}
FUSE_FIGURES = [
    "seq_write_MBps",
    "seq_read_MBps",
    "small_create_ops",
    "stat_ops_cold",
    "listdir_ms",
    "small_read_ops",
    "delete_ops",
]
THROUGHPUT_RUNS = [(1, 1), (1, 4), (3, 1), (3, 4)]  # (replication, clients)
METADATA_KINDS = ["stat", "open", "list", "create", "mkdir", "rename", "delete"]
METADATA_CEILING = {"stat": "empty GET", "open": "empty GET", "list": "empty GET"}


@dataclass
class Target:
    name: str
    measured: float
    goal: float
    unit: str
    lower_is_better: bool = False

    @property
    def met(self) -> bool:
        return self.measured <= self.goal if self.lower_is_better else self.measured >= self.goal


def run_json(script: str, *args: str) -> Any:
    """Run one benchmark with --json and parse the JSON it prints last."""
    command = [sys.executable, str(BENCH / script), *args, "--json"]
    print(f"$ {' '.join(command[1:])}", file=sys.stderr, flush=True)
    started = time.monotonic()
    finished = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    print(f"  {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    if finished.returncode != 0:
        raise SystemExit(f"{script} failed:\n{finished.stderr[-4000:]}")
    text = finished.stdout
    starts = [index for index in (text.find("{"), text.find("[")) if index >= 0]
    return json.loads(text[min(starts) :])


def machine() -> list[str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return [
        f"- {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs ({cpu}), "
        f"{memory_kib / 1024**2:.0f} GiB RAM, Linux {platform.release()}, Python {platform.python_version()}",
        f"- load average before the run: {os.getloadavg()[0]:.1f}",
    ]


def throughput(quick: bool) -> tuple[list[str], dict[tuple[int, int], dict[str, Any]]]:
    size = "128" if quick else "1024"
    runs: dict[tuple[int, int], dict[str, Any]] = {}
    for replication, clients in THROUGHPUT_RUNS:
        runs[(replication, clients)] = run_json(
            "throughput.py", "--size-mib", size, "--replication", str(replication), "--clients", str(clients)
        )
    columns = [f"r{r}, {c} client{'s' if c > 1 else ''}" for r, c in THROUGHPUT_RUNS]
    lines = [
        f"{size} MiB per run, 3 DataNodes, 128 MiB blocks; MB/s (CPU s/GiB, clients + servers)",
        "",
        "| measurement | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    names: list[str] = []
    for run in runs.values():
        names += [result["name"] for result in run["results"] if result["name"] not in names]
    for name in names:
        cells = []
        for run in runs.values():
            found = next((result for result in run["results"] if result["name"] == name), None)
            cells.append("" if found is None else f"{found['mb_per_s']:,.0f} ({found['cpu_s_per_gib']:.1f})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines, runs


def metadata(quick: bool, postgres: str, ops_per_kind: int) -> tuple[list[str], dict[str, list[dict[str, Any]]]]:
    ops = "300" if quick else str(ops_per_kind)
    backends = {"SQLite (synchronous=FULL)": run_json("metadata.py", "--ops", ops)}
    if postgres:
        backends["PostgreSQL"] = run_json("metadata.py", "--ops", ops, "--postgres", postgres)
    lines = [f"{ops} operations of each kind per client count; ops/s (share of the HTTP-stack ceiling)", ""]
    for backend, rounds in backends.items():
        lines += [
            f"**{backend}**",
            "",
            "| operation | "
            + " | ".join(f"{r['clients']} client{'s' if r['clients'] > 1 else ''}" for r in rounds)
            + " |",
            "|---|" + "---:|" * len(rounds),
        ]
        for kind in ["empty GET", "empty POST", *METADATA_KINDS]:
            cells = []
            for r in rounds:
                cell = f"{r[kind]['ops_per_s']:,.0f}"
                ceiling = METADATA_CEILING.get(kind, "empty POST" if kind in METADATA_KINDS else None)
                if ceiling:
                    cell += f" ({r[kind]['ops_per_s'] / r[ceiling]['ops_per_s']:.0%})"
                cells.append(cell)
            lines.append(f"| {kind} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines, backends


def fuse(quick: bool, rounds: int) -> tuple[list[str], dict[str, Any]]:
    sizes = ["--size-mib", "128", "--files", "300"] if quick else ["--size-mib", "1024", "--files", "2000"]
    result = run_json("fuse.py", *sizes, "--rounds", "1" if quick else str(rounds))
    references = list(FUSE_REFERENCES)
    lines = [
        f"fsbench.py ({result['args']['size_mib']} MiB file, {result['args']['files']} x 4 KiB files, "
        f"replication {result['args']['replication']}, medians of {result['args']['rounds']} rounds); "
        "reference columns: ../shared/bench/README.md",
        "",
        "| figure | local dir | our mount | " + " | ".join(references) + " |",
        "|---|---:|---:|" + "---:|" * len(references),
    ]
    for figure in FUSE_FIGURES:
        cells = [f"{result['local'].get(figure, 0):,.1f}", f"**{result['mount'].get(figure, 0):,.1f}**"]
        cells += [f"{FUSE_REFERENCES[ref][figure]:,}" for ref in references]
        lines.append(f"| {figure} | " + " | ".join(cells) + " |")
    return lines, result


def figure(run: dict[str, Any], prefix: str) -> float:
    return float(next(r["mb_per_s"] for r in run["results"] if r["name"].startswith(prefix)))


def targets(
    runs: dict[tuple[int, int], dict[str, Any]] | None,
    backends: dict[str, list[dict[str, Any]]] | None,
    mount: dict[str, Any] | None,
) -> list[Target]:
    found: list[Target] = []
    if runs:
        found.append(
            Target("SDK get, 1 client (to /dev/null)", figure(runs[(3, 1)], "sdk get (to /dev/null)"), 1000, "MB/s")
        )
        found.append(Target("SDK put, replication 3, 1 client", figure(runs[(3, 1)], "sdk put"), 300, "MB/s"))
    for backend, rounds in (backends or {}).items():
        for kind in ("stat", "open"):
            share = max(r[kind]["ops_per_s"] / r["empty GET"]["ops_per_s"] for r in rounds)
            found.append(
                Target(f"{backend}: {kind} / empty-endpoint ceiling (best client count)", share * 100, 50, "%")
            )
        eight = next((r for r in rounds if r["clients"] == 8), None)
        if eight:
            found.append(
                Target(f"{backend}: empty-file creates, 8 clients", eight["create"]["ops_per_s"], 2000, "ops/s")
            )
    if mount:
        moosefs = FUSE_REFERENCES["MooseFS 3.0, 3 chunkservers, goal 3"]
        for name in FUSE_FIGURES:
            found.append(
                Target(f"FUSE {name} vs MooseFS", mount["mount"].get(name, 0), moosefs[name], "", name.endswith("_ms"))
            )
        passthrough = FUSE_REFERENCES["Python FUSE passthrough (fusepy, big_writes)"]["seq_read_MBps"]
        share = mount["mount"]["seq_read_MBps"] / passthrough * 100
        found.append(Target("FUSE seq read / Python FUSE ceiling (passthrough reference)", share, 70, "%"))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help="write the markdown here (default: stdout)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of the whole suite")
    parser.add_argument("--postgres", default="", help="also run bench/metadata.py on this PostgreSQL URL")
    parser.add_argument("--metadata-ops", type=int, default=2000, help="operations of each kind per client count")
    parser.add_argument("--fuse-rounds", type=int, default=3, help="interleaved fsbench rounds (medians)")
    parser.add_argument("--skip", default="", help="comma-separated: throughput, metadata, fuse")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    report = ["# Benchmark report", "", *machine(), ""]
    runs = backends = mount = None
    if "throughput" not in skip:
        lines, runs = throughput(args.quick)
        report += ["## Throughput (bench/throughput.py)", "", *lines, ""]
    if "metadata" not in skip:
        lines, backends = metadata(args.quick, args.postgres, args.metadata_ops)
        report += ["## Metadata (bench/metadata.py)", "", *lines]
    if "fuse" not in skip:
        lines, mount = fuse(args.quick, args.fuse_rounds)
        report += ["## FUSE (bench/fuse.py running fsbench.py)", "", *lines, ""]
    report += ["## Targets of issue #10", "", "| target | measured | goal | met |", "|---|---:|---:|---|"]
    for target in targets(runs, backends, mount):
        sign = "≤" if target.lower_is_better else "≥"
        goal = f"{target.goal:,.0f}" if target.goal >= 100 else f"{target.goal:,.1f}"
        report.append(
            f"| {target.name} | {target.measured:,.1f} {target.unit} | {sign} {goal} {target.unit} | "
            f"{'yes' if target.met else '**no**'} |"
        )
    text = "\n".join(report) + "\n"
    if args.out:
        args.out.write_text(text)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text)


if __name__ == "__main__":
    main()
