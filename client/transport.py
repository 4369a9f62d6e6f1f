"""The one HTTP seam: client construction and the mapping of transport failures to DfsErrors.

Every request this package (and a DataNode forwarding a pipeline) makes goes through an
`httpx.AsyncClient` built here; tests may pass their own transport. Lower-layer errors
become protocol errors in exactly one place: `error_from_transport` and `raise_for_error`.
"""

from __future__ import annotations

import json
import ssl
from typing import Any

import httpx

from client.protocol.errors import (
    DfsError,
    DfsTimeoutError,
    ProtocolError,
    UnavailableError,
    error_from_response,
)
from client.request_id import stamp_request
from client.tls import client_ssl_context, describe_tls_failure

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=60.0, write=60.0, pool=60.0)


def make_http_client(
    *,
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    transport: httpx.AsyncBaseTransport | None = None,
    headers: dict[str, str] | None = None,
    max_connections: int = 256,
    verify: ssl.SSLContext | None = None,
) -> httpx.AsyncClient:
    """An AsyncClient tuned for the data path: many keep-alive connections, no redirects.

    Every request carries the current request id as `X-Request-ID` (client.request_id).
    `verify` is the trust for https URLs (client.tls.client_ssl_context); None: the system
    trust store. It is passed explicitly because `trust_env=False` keeps httpx from reading
    SSL_CERT_FILE (and proxy variables: the data path never goes through a proxy)."""
    return httpx.AsyncClient(
        verify=verify if verify is not None else client_ssl_context(),
        timeout=timeout,
        event_hooks={"request": [stamp_request]},
        transport=transport,
        headers=headers,
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=64),
        follow_redirects=False,
        trust_env=False,
    )


def error_from_transport(exc: httpx.HTTPError, target: str) -> DfsError:
    """A connection-level failure talking to `target`, as the protocol error it means."""
    if isinstance(exc, httpx.TimeoutException):
        return DfsTimeoutError(f"{target} did not answer in time ({type(exc).__name__})")
    if isinstance(exc, httpx.TransportError):
        detail = describe_tls_failure(exc) or str(exc) or type(exc).__name__
        if isinstance(exc, httpx.RemoteProtocolError) and target.startswith("http://"):
            # What a TLS-only server does to a plain HTTP request: hang up without a word.
            detail += " (if the server uses TLS, use an https:// URL)"
        return UnavailableError(f"cannot reach {target}: {detail}")
    return ProtocolError(f"bad exchange with {target}: {exc}")


async def raise_for_error(response: httpx.Response) -> None:
    """Raise the DfsError an error response carries (works for streamed responses too)."""
    if response.status_code < 400:
        return
    body = await response.aread()
    payload: Any
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        payload = body[:300].decode("utf-8", "replace")
    raise error_from_response(response.status_code, payload, response.headers.get("Retry-After"))


def namenode_urls(spec: str) -> list[str]:
    """The NameNode URLs of ``http://nn1:9870,http://nn2:9870`` (one or more, all sharing one
    metadata database); ValueError if there is none."""
    urls = [part.strip().rstrip("/") for part in spec.split(",") if part.strip()]
    if not urls:
        raise ValueError(f"no NameNode URL in {spec!r}")
    return urls
