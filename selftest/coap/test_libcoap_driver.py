"""The libcoap driver: coap-client against coap-server (both libcoap's), the right PSK answered and a
wrong one not (coap-client exits 0 either way: the payload decides), within the ``-B`` bound, with
the key redacted from everything recorded; binaries found by flavour, or a clear error."""

from __future__ import annotations

import pytest
from helpers_coap import IDENTITY, KEY

from hil.coap.errors import LibcoapNotFound
from hil.coap.libcoap import REDACTED, LibcoapServer, find_binary, run_client


@pytest.mark.parametrize("client_flavour", ["openssl", "gnutls"])
def test_coap_client_with_the_right_psk_gets_the_time(libcoap_server: LibcoapServer, client_flavour: str) -> None:
    url = f"coaps://127.0.0.1:{libcoap_server.secure_port}/time"
    result = run_client(url, identity=IDENTITY, key=KEY, timeout=5, binary=find_binary("client", client_flavour))
    assert result.responded, result
    assert result.elapsed_s < 3.0
    assert REDACTED in result.command and KEY not in " ".join(result.command)


def test_coap_client_with_a_wrong_key_gets_nothing(libcoap_server: LibcoapServer) -> None:
    url = f"coaps://127.0.0.1:{libcoap_server.secure_port}/time"
    result = run_client(url, identity=IDENTITY, key="wrongkey1234567", timeout=2)
    assert result.returncode == 0  # libcoap's coap-client does not signal it in its exit status
    assert not result.responded and result.payload == b""  # its error lines are warnings, not payload
    assert result.warnings and result.elapsed_s < 2 + 3
    assert "wrongkey1234567" not in repr(result)


def test_plain_coap_and_put_through_the_driver(libcoap_server: LibcoapServer) -> None:
    url = f"coap://127.0.0.1:{libcoap_server.port}/time"
    assert run_client(url, timeout=3).responded
    # coap-server's /example_data takes a PUT and returns it on GET
    data = f"coap://127.0.0.1:{libcoap_server.port}/example_data"
    assert run_client(data, method="put", payload="hil-put", timeout=3).returncode == 0
    assert run_client(data, timeout=3).payload == b"hil-put"


def test_server_output_is_redacted() -> None:
    with LibcoapServer(KEY, hint=IDENTITY, verbosity=7) as server:
        run_client(f"coaps://127.0.0.1:{server.secure_port}/time", identity=IDENTITY, key=KEY, timeout=3)
        output = server.output()
    assert output and KEY not in output


def test_a_missing_binary_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(LibcoapNotFound, match="libcoap3-bin"):
        find_binary("client")
