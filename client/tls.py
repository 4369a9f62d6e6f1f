"""TLS on the client side: which certificate authorities a process trusts when it calls a server.

Every caller (the SDK, the CLI, the FUSE mount, a DataNode calling the NameNode or another
DataNode, a NameNode proxying WebHDFS data) builds one `ssl.SSLContext` here, once per client:
loading a trust store costs milliseconds, far too much per request. A plain `http://` URL
never touches the context.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path

#: The CA bundle SDK clients trust when none is passed (PEM); unset: the system trust store.
CA_FILE_ENV = "DFS_CA_FILE"


CA_NAME = "ca.pem"
CERT_NAME = "server.pem"
KEY_NAME = "server-key.pem"


@dataclass(frozen=True)
class TlsFiles:
    """Where one cluster's TLS material lives: the CA to trust, the certificate and key to serve."""

    directory: Path

    @property
    def ca_file(self) -> Path:
        return self.directory / CA_NAME

    @property
    def cert_file(self) -> Path:
        return self.directory / CERT_NAME

    @property
    def key_file(self) -> Path:
        return self.directory / KEY_NAME


class TlsSetupError(ValueError):
    """A TLS file is missing, unreadable or malformed; the message names the file, in one line."""


def default_ca_file() -> str | None:
    """$DFS_CA_FILE, or None (trust the system store)."""
    return os.environ.get(CA_FILE_ENV) or None


def check_readable(path: str | Path, what: str) -> Path:
    """`path` as a Path if it is a readable file; else TlsSetupError saying which and why."""
    file = Path(path)
    if not file.exists():
        raise TlsSetupError(f"{what} {file} does not exist")
    if not file.is_file():
        raise TlsSetupError(f"{what} {file} is not a file")
    if not os.access(file, os.R_OK):
        raise TlsSetupError(f"{what} {file} is not readable by this user")
    return file


def client_ssl_context(ca_file: str | Path | None = None) -> ssl.SSLContext:
    """Verify servers against `ca_file` (a PEM bundle) only, or the system trust store when None.

    Hostnames are always checked: a cluster's certificates must name the host (or IP) that
    URLs use, e.g. DNS:localhost and IP:127.0.0.1 for a local cluster."""
    if ca_file is None:
        return ssl.create_default_context()
    file = check_readable(ca_file, "CA file")
    try:
        return ssl.create_default_context(cafile=str(file))
    except ssl.SSLError as exc:
        raise TlsSetupError(f"CA file {file} holds no usable PEM certificate ({exc.reason or exc})") from None


def describe_tls_failure(exc: BaseException) -> str | None:
    """A person's sentence for a failed TLS handshake found in `exc`'s causes, or None if none."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            reason = seen.verify_message or seen.reason or str(seen)
            return (
                f"its TLS certificate is not trusted ({reason}); pass the cluster's CA with --ca-file or ${CA_FILE_ENV}"
            )
        if isinstance(seen, ssl.SSLError):
            reason = seen.reason or str(seen)
            return f"the TLS handshake failed ({reason}); is the server serving https?"
        seen = seen.__cause__ or seen.__context__
    return None
