"""`dfs tls make-certs`: a private CA and a server certificate, to try TLS without a PKI."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="TLS helpers (docs/security.md).", no_args_is_help=True)


@app.command("make-certs")
def make_certs_command(
    directory: Annotated[Path, typer.Argument(help="Where to write ca.pem, server.pem and server-key.pem.")],
    host: Annotated[
        list[str] | None, typer.Option("--host", help="A DNS name the nodes are reached by (repeatable).")
    ] = None,
    ip: Annotated[
        list[str] | None, typer.Option("--ip", help="An IP address the nodes are reached by (repeatable).")
    ] = None,
    days: Annotated[int, typer.Option(min=1, help="Days the certificates are valid.")] = 365,
) -> None:
    """Make a CA and one server certificate it signs, naming every --host and --ip.

    Without --host and --ip: localhost and 127.0.0.1. Existing files in DIRECTORY are replaced;
    the CA's private key is not kept. The key file is written with mode 0600.
    """
    from client.tls_certs import make_certs

    hosts, ips = list(host or []), list(ip or [])
    if not hosts and not ips:
        hosts, ips = ["localhost"], ["127.0.0.1"]
    files = make_certs(directory.resolve(), hosts=hosts, ips=ips, days=days)
    names = ", ".join([*(f"DNS:{name}" for name in hosts), *(f"IP:{address}" for address in ips)])
    out = sys.stdout
    out.write(f"CA certificate      {files.ca_file}    (give it to clients: --ca-file or DFS_CA_FILE)\n")
    out.write(f"server certificate  {files.cert_file}    ({names}, valid {days} days)\n")
    out.write(f"server key          {files.key_file}    (mode 0600)\n")
    tls_flags = f"--tls-cert {files.cert_file} --tls-key {files.key_file} --tls-ca {files.ca_file}"
    out.write(f"\nServe:   dfs namenode {tls_flags}\n")
    out.write(f"         dfs datanode --namenode https://HOST:9870 {tls_flags}\n")
    out.write(f"Use:     dfs --namenode https://HOST:9870 --ca-file {files.ca_file} ls /\n")
    out.flush()
