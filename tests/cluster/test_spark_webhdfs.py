"""Hadoop's own WebHDFS client (inside Spark) against our NameNode: opt in with `pytest -m spark`.

Spark 4.0 bundles the Hadoop 3.4 client, the strictest WebHDFS user: chunked uploads, 201 from
the DataNode on CREATE, Locations reused with a new offset on seek, GETFILEBLOCKLOCATIONS per
input file, and the output committer's renames and deletes. Needs Java 17 and
`pip install -e '.[spark]'`; skipped when pyspark is not installed.
"""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap

import pyarrow.parquet as pq
import pytest

from tests.minicluster import MiniCluster

pytestmark = [pytest.mark.cluster, pytest.mark.spark]

SPARK_JOB = textwrap.dedent(
    """
    import sys
    from pyspark.sql import SparkSession

    base = sys.argv[1]
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    frame = spark.range(200000).selectExpr("id", "id * 2 as twice", "cast(id as string) as name")
    frame.repartition(3).write.mode("overwrite").parquet(base + "/table")
    back = spark.read.parquet(base + "/table")
    print("ROWS", back.count(), back.selectExpr("sum(twice)").first()[0])
    lines = spark.sparkContext.parallelize(["line %d" % i for i in range(5000)], 2)
    lines.saveAsTextFile(base + "/text")
    print("LINES", spark.read.text(base + "/text").count())
    spark.stop()
    """
)


def test_spark_writes_and_reads_webhdfs_paths(cluster: MiniCluster, remote_dir: str) -> None:
    pytest.importorskip("pyspark")
    base = f"webhdfs://{cluster.url.split('://', 1)[1]}{remote_dir}"
    job = subprocess.run(
        [sys.executable, "-c", SPARK_JOB, base], capture_output=True, text=True, timeout=600, check=False
    )
    assert job.returncode == 0, job.stderr[-5000:]
    assert "ROWS 200000 39999800000" in job.stdout
    assert "LINES 5000" in job.stdout
    # What Spark committed is really there, readable through the SDK.
    with cluster.client() as fs:
        names = [entry.name for entry in fs.list(f"{remote_dir}/table")]
        assert "_SUCCESS" in names
        parts = [name for name in names if name.endswith(".parquet")]
        rows = sum(pq.read_table(io.BytesIO(fs.read_bytes(f"{remote_dir}/table/{name}"))).num_rows for name in parts)
        assert rows == 200000
        assert not any(name.startswith("_temporary") for name in names)
