"""Python SDK and `dfs` shell for the distributed file system.

    from client import DFSClient
    with DFSClient("http://127.0.0.1:9870") as fs:
        fs.put("local.bin", "/data/local.bin")
        with fs.open("/data/local.bin") as f:
            head = f.read(100)

`AsyncDFSClient` offers the same API as coroutines. Errors are `DfsError`s: OSErrors
with a real errno (so `except FileNotFoundError` works). `with request_id("my-job-7"):`
names the requests made inside it, for following them through the servers' logs.
"""

import logging

from client.filesystem import AsyncDFSClient
from client.protocol.client_namenode import ClusterReport, FileStatus, FileType
from client.protocol.errors import DfsError
from client.request_id import request_id
from client.sync_client import DFSClient

# A library stays quiet unless the application configures logging (the `dfs` shell does).
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["AsyncDFSClient", "ClusterReport", "DFSClient", "DfsError", "FileStatus", "FileType", "request_id"]
