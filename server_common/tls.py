"""TLS on the server side: the certificate a NameNode or DataNode serves, checked at start-up.

A server with TLS configured serves https only. Every file is checked before the socket is
bound, so a wrong path is one line on stderr and exit code 1, not a traceback from inside
uvicorn or a server that starts and then fails every connection.
"""

from __future__ import annotations

import ssl
import sys
from pathlib import Path

from client.tls import TlsSetupError, check_readable, client_ssl_context


def server_ssl_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A TLS 1.2+ server context serving `cert_file` (PEM, leaf first, chain after) with its key."""
    check_readable(cert_file, "TLS certificate file")
    check_readable(key_file, "TLS key file")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile=str(cert_file), keyfile=str(key_file))
    except ssl.SSLError as exc:
        raise TlsSetupError(
            f"cannot use TLS certificate {cert_file} with key {key_file}: {exc.reason or exc}"
        ) from None
    return context


def start_tls(
    cert_file: Path | None, key_file: Path | None, ca_file: Path | None, server: str
) -> ssl.SSLContext | None:
    """What `server` ("namenode"/"datanode") serves: a TLS context, or None for plain HTTP.

    Every configured file is checked first (the CA bundle too, though the server's clients load
    it themselves); an unusable one is a single line on stderr and exit code 1."""
    try:
        if ca_file is not None:
            client_ssl_context(ca_file)
        return server_ssl_context(cert_file, key_file) if cert_file and key_file else None
    except TlsSetupError as exc:
        print(f"dfs {server}: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None


__all__ = ["TlsSetupError", "server_ssl_context", "start_tls"]
