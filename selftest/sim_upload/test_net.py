"""The device's network side: HTTPS with the provisioned CA, a MITM certificate refused before
anything is sent, and the Wi-Fi-like MSS clamp."""

from __future__ import annotations

import socket

import pytest

from hil.sim.firmware import net
from hil.sim.firmware.upload import upload_cycle
from sim_upload.conftest import nvs_value
from sim_upload.test_upload import event


def test_https_with_the_provisioned_ca_uploads(make_server, make_device):
    server = make_server(tls="real")
    assert server.url.startswith("https://")
    rt, device = make_device(server.url)
    assert upload_cycle(device)
    assert event(rt, "upload.ok")[0]["nonce"] == "10001" and len(server.stored()) == 10


def test_https_mitm_certificate_is_refused_and_nothing_is_sent(make_server, make_device):
    server = make_server(tls="mitm")
    rt, device = make_device(server.url)
    assert upload_cycle(device) is False
    assert event(rt, "tls.failed")[0]["reason"].startswith("certificate verify failed")
    assert server.recorder.uploads == [] and server.stored() == []
    assert not event(rt, "upload.retry")  # a certificate failure is final, not retried


def test_tls_no_verify_defect_accepts_the_mitm_certificate(make_server, make_device):
    server = make_server(tls="mitm")
    rt, device = make_device(server.url, ("tls-no-verify",))
    assert upload_cycle(device)
    assert not event(rt, "tls.failed") and server.recorder.nonces == [10001]


def test_https_without_a_provisioned_ca_is_refused():
    endpoint = net.Endpoint.parse("https://127.0.0.1:1")
    with pytest.raises(net.TlsError, match="no CA certificate provisioned"):
        net.post_json(endpoint, "/x", b"{}", ca_pem="")


def test_connection_refused_is_a_net_error_naming_the_server():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(net.NetError, match=f"127.0.0.1:{port}: connection refused"):
        net.open_socket("127.0.0.1", port)


def _peer_mss(clamp: bool) -> int:
    """MSS the server side of a loopback connection may send with (what the client advertised)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        client = net.open_socket("127.0.0.1", port) if clamp else socket.create_connection(("127.0.0.1", port))
        with client, listener.accept()[0] as accepted:
            return accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)


def test_mss_is_clamped_like_wifi():
    assert _peer_mss(clamp=True) <= net.WIFI_MSS
    assert _peer_mss(clamp=False) > net.WIFI_MSS  # unclamped loopback: ~64 KiB segments


def test_source_address_comes_from_the_runtime(make_server, make_device):
    server = make_server()
    rt, device = make_device(server.url)
    rt.net_address = "127.0.0.2"
    assert upload_cycle(device)
    assert server.recorder.peers == ["127.0.0.2"]
    assert nvs_value(rt.flash, "nonce") == 10001


def test_endpoint_parsing():
    ep = net.Endpoint.parse("https://[::1]:8443/prefix/")
    assert (ep.scheme, ep.host, ep.port, ep.base_path) == ("https", "::1", 8443, "/prefix")
    assert ep.url("/api/upload/data") == "https://[::1]:8443/prefix/api/upload/data"
    assert net.Endpoint.parse("http://h").port == 80
    with pytest.raises(ValueError, match="not http"):
        net.Endpoint.parse("coap://h")
