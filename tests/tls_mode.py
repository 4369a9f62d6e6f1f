"""DFS_TEST_TLS=1: every cluster the tests start serves https, so the whole suite can run over TLS.

One CA and one server certificate (DNS:localhost, IP:127.0.0.1) are made per test process
and trusted through the environment, so code under test that builds its own clients (the
SDK, `dfs` subprocesses, httpx, requests, HdfsCLI, fsspec) trusts them without being told:
DFS_CA_FILE for our SDK and servers, SSL_CERT_FILE for httpx and OpenSSL's default store,
REQUESTS_CA_BUNDLE for requests. A test that needs a CA of its own passes `tls=True`.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from client.tls import CA_FILE_ENV, TlsFiles

ENV = "DFS_TEST_TLS"
_session: TlsFiles | None = None


def enabled() -> bool:
    return os.environ.get(ENV) == "1"


def session_tls() -> TlsFiles:
    """The test process's CA and certificate, made (and trusted by this process) on first use."""
    global _session
    if _session is None:
        from client.tls_certs import make_certs

        directory = Path(tempfile.mkdtemp(prefix="dfs-test-tls-"))
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        _session = make_certs(directory)
        ca = str(_session.ca_file)
        os.environ.update({CA_FILE_ENV: ca, "SSL_CERT_FILE": ca, "REQUESTS_CA_BUNDLE": ca})
    return _session


def cluster_tls() -> TlsFiles | bool:
    """What a MiniCluster gets by default: the session's TLS files under DFS_TEST_TLS=1, else no TLS."""
    return session_tls() if enabled() else False


def scheme() -> str:
    """The URL scheme clusters serve in this run."""
    return "https" if enabled() else "http"
