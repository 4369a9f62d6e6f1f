"""Smoke test of bench/namespace_scale.py: a tiny run prints every row of its tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import namespace_scale

pytestmark = pytest.mark.cluster


def rows(output: str) -> dict[str, list[str]]:
    """Markdown table rows by their first cell."""
    found = {}
    for line in output.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            found[cells[0]] = cells[1:]
    return found


def test_a_tiny_run_prints_every_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    namespace_scale.main(["--files", "2000", "--ops", "40", "--clients", "4", "--dir", str(tmp_path)])
    operations, block_report = capsys.readouterr().out.split("\n\n")
    table = rows(operations)

    header = table["operation"]
    assert header[0] == "1,000 files: ops/s" and header[4] == "2,000 files: ops/s"
    for kind in namespace_scale.KINDS:
        ops_small, _, p99_small, cpu_small, ops_large, _, p99_large, cpu_large = (
            float(cell.replace(",", "")) for cell in table[kind]
        )
        assert min(ops_small, p99_small, cpu_small, ops_large, p99_large, cpu_large) > 0, kind
    for name in ("NameNode RSS (VmRSS after the operations)", "NameNode peak RSS (VmHWM)", "database size"):
        assert table[name][0].endswith(" MiB") and table[name][4].endswith(" MiB"), name
    for name in ("time to fill (bulk INSERT; COPY on PostgreSQL)", "NameNode start (to listening)"):
        assert table[name][0].endswith(" s") and table[name][4].endswith(" s"), name
    report = rows(block_report)
    assert float(report["without a block report (just before it)"][0].replace(",", "")) > 0
    during = next(row for name, row in report.items() if name.startswith("during a full block report of 2,000 blocks"))
    assert float(during[0].replace(",", "")) > 0
    assert not list(tmp_path.iterdir()), "the run leaves nothing behind"
