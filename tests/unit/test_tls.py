"""TLS pieces without a cluster: generated certificates (handshakes in memory), trust contexts,
the settings rules, and how TLS failures read."""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from client.dfs_fsspec import DFSFileSystem
from client.local_cluster import _dns_names, _ip_addresses
from client.protocol.errors import UnavailableError
from client.tls import CA_FILE_ENV, TlsFiles, TlsSetupError, client_ssl_context, describe_tls_failure
from client.tls_certs import make_certs
from client.transport import error_from_transport
from datanode.config import DataNodeSettings
from namenode.config import NameNodeSettings
from server_common.serve import base_url
from server_common.tls import server_ssl_context


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_certs(tmp_path_factory.mktemp("tls"), hosts=["localhost", "nn.example"], ips=["127.0.0.1", "::1"])


def handshake(server: ssl.SSLContext, client: ssl.SSLContext, hostname: str) -> None:
    """A full TLS handshake between the two contexts in memory; raises what the client would."""
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    server_in, server_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    client_side = client.wrap_bio(to_client, to_server, server_hostname=hostname)
    server_side = server.wrap_bio(server_in, server_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(10):
        for name, side in (("client", client_side), ("server", server_side)):
            if not done[name]:
                try:
                    side.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        server_in.write(to_server.read())
        to_client.write(server_out.read())
        if all(done.values()):
            return
    raise AssertionError("handshake did not finish")


def test_made_files_and_modes(certs: TlsFiles) -> None:
    assert {p.name for p in certs.directory.iterdir()} == {"ca.pem", "server.pem", "server-key.pem"}
    assert stat.S_IMODE(certs.key_file.stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(certs.cert_file.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost", "nn.example"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]


@pytest.mark.parametrize("hostname", ["localhost", "nn.example", "127.0.0.1", "::1"])
def test_the_ca_verifies_the_certificate_for_every_name_it_holds(certs: TlsFiles, hostname: str) -> None:
    handshake(server_ssl_context(certs.cert_file, certs.key_file), client_ssl_context(certs.ca_file), hostname)


def test_a_name_the_certificate_does_not_hold_is_refused(certs: TlsFiles) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match=r"Hostname mismatch|doesn.t match"):
        handshake(server_ssl_context(certs.cert_file, certs.key_file), client_ssl_context(certs.ca_file), "other.host")


def test_another_ca_is_refused(certs: TlsFiles, tmp_path: Path) -> None:
    other = make_certs(tmp_path)
    with pytest.raises(ssl.SSLCertVerificationError) as caught:
        handshake(server_ssl_context(certs.cert_file, certs.key_file), client_ssl_context(other.ca_file), "localhost")
    assert describe_tls_failure(httpx.ConnectError("boom")) is None  # nothing TLS in a plain connection error
    error = httpx.ConnectError(str(caught.value))
    error.__cause__ = caught.value
    message = str(error_from_transport(error, "https://nn:9870"))
    assert message.startswith("cannot reach https://nn:9870: its TLS certificate is not trusted (")
    assert "--ca-file or $DFS_CA_FILE" in message


def test_making_certificates_needs_valid_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        make_certs(tmp_path, ips=["localhost"])
    with pytest.raises(ValueError, match="at least one host name or IP address"):
        make_certs(tmp_path, hosts=[], ips=[])


def test_making_again_replaces_the_files(tmp_path: Path) -> None:
    first = make_certs(tmp_path).ca_file.read_bytes()
    assert make_certs(tmp_path).ca_file.read_bytes() != first


def test_unusable_ca_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(TlsSetupError, match=f"^CA file {tmp_path / 'missing.pem'} does not exist$"):
        client_ssl_context(tmp_path / "missing.pem")
    with pytest.raises(TlsSetupError, match="is not a file"):
        client_ssl_context(tmp_path)
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(TlsSetupError, match="holds no usable PEM certificate"):
        client_ssl_context(junk)


def test_a_certificate_that_does_not_match_its_key_is_refused(certs: TlsFiles, tmp_path: Path) -> None:
    other = make_certs(tmp_path)
    with pytest.raises(TlsSetupError, match=f"cannot use TLS certificate {certs.cert_file} with key"):
        server_ssl_context(certs.cert_file, other.key_file)


def test_plain_http_to_a_tls_port_gets_a_hint() -> None:
    hung_up = httpx.RemoteProtocolError("Server disconnected without sending a response.")
    plain = error_from_transport(hung_up, "http://nn:9870")
    assert isinstance(plain, UnavailableError)
    assert str(plain).endswith("(if the server uses TLS, use an https:// URL)")
    assert "https:// URL" not in str(error_from_transport(hung_up, "https://nn:9870"))


def test_wrong_protocol_handshake_reads_as_such() -> None:
    wrong = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    wrong.reason = "WRONG_VERSION_NUMBER"
    error = httpx.ConnectError("[SSL: WRONG_VERSION_NUMBER]")
    error.__context__ = wrong
    assert str(error_from_transport(error, "https://nn:1")) == (
        "cannot reach https://nn:1: the TLS handshake failed (WRONG_VERSION_NUMBER); is the server serving https?"
    )


def test_certificate_and_key_go_together(tmp_path: Path) -> None:
    for settings in (NameNodeSettings, DataNodeSettings):
        with pytest.raises(ValueError, match="give both or neither"):
            settings(tls_cert_file=tmp_path / "c.pem")
        with pytest.raises(ValueError, match="give both or neither"):
            settings(tls_key_file=tmp_path / "k.pem")
        both = settings(tls_cert_file=tmp_path / "c.pem", tls_key_file=tmp_path / "k.pem")
        assert both.tls_ca_file is None


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DFS_DATANODE_TLS_CERT_FILE", str(tmp_path / "c.pem"))
    monkeypatch.setenv("DFS_DATANODE_TLS_KEY_FILE", str(tmp_path / "k.pem"))
    monkeypatch.setenv("DFS_DATANODE_TLS_CA_FILE", str(tmp_path / "ca.pem"))
    settings = DataNodeSettings()
    assert (settings.tls_cert_file, settings.tls_ca_file) == (tmp_path / "c.pem", tmp_path / "ca.pem")


def test_a_tls_datanode_cannot_advertise_plain_http(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    with pytest.raises(ValueError, match="advertise_url must be an https:// URL"):
        DataNodeSettings(advertise_url="http://dn1:9864", tls_cert_file=cert, tls_key_file=key)
    settings = DataNodeSettings(advertise_url="https://dn1:9864", tls_cert_file=cert, tls_key_file=key)
    assert settings.advertise_url == "https://dn1:9864"


def test_base_urls_follow_tls() -> None:
    assert base_url("0.0.0.0", 1, tls=True) == "https://127.0.0.1:1"
    assert base_url("::", 2, tls=True) == "https://[::1]:2"
    assert base_url("127.0.0.1", 3) == "http://127.0.0.1:3"


def test_fsspec_host_and_port_use_https_when_a_ca_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CA_FILE_ENV, raising=False)
    assert DFSFileSystem(host="h", port=1, skip_instance_cache=True).namenode == "http://h:1"
    assert DFSFileSystem(host="h", port=1, tls=True, skip_instance_cache=True).namenode == "https://h:1"
    with_ca = DFSFileSystem(host="h", port=1, ca_file="/ca.pem", skip_instance_cache=True)
    assert (with_ca.namenode, with_ca.ca_file) == ("https://h:1", "/ca.pem")
    monkeypatch.setenv(CA_FILE_ENV, "/env-ca.pem")
    assert DFSFileSystem(host="h", port=1, skip_instance_cache=True).namenode == "https://h:1"
    assert DFSFileSystem(host="h", port=1, tls=False, skip_instance_cache=True).namenode == "http://h:1"


@pytest.mark.parametrize(
    ("host", "dns", "ips"),
    [
        ("127.0.0.1", ["localhost"], ["127.0.0.1"]),
        ("0.0.0.0", ["localhost"], ["127.0.0.1"]),
        ("::", ["localhost"], ["127.0.0.1", "::1"]),
        ("10.1.2.3", ["localhost"], ["127.0.0.1", "10.1.2.3"]),
        ("box.local", ["localhost", "box.local"], ["127.0.0.1"]),
    ],
)
def test_local_cluster_certificates_name_the_bind_address(host: str, dns: list[str], ips: list[str]) -> None:
    assert (_dns_names(host), _ip_addresses(host)) == (dns, ips)
