"""libcoap's real coap-client against the virtual board's CoAP/CoAPS servers (the SOP's peer)."""

from __future__ import annotations

import json
import socket

from sim_coap.conftest import PSK, PSK_ID


def test_coaps_get_sensor_with_the_right_psk(make_board, coap_client) -> None:
    board = make_board()
    done = coap_client(f"coaps://{board.address}/sensor", identity=PSK_ID, key=PSK)
    reading = json.loads(done.stdout)
    assert set(reading) == {"val", "temp"} and reading["val"] >= 1, done.stderr
    ok = board.rt.wait_for(r"coap: PSK handshake OK: identity 'iotlab2024' from 127\.0\.0\.1:\d+ in ([\d.]+) ms")
    assert float(ok[-1].group(1)) < 3000  # the SOP's handshake target
    board.rt.wait_for(r"coap: GET /sensor -> 2\.05 \(coaps from ")
    assert all(PSK not in line for line in board.rt.lines)


def test_coaps_wrong_key_gives_no_data_and_psk_failed(make_board, coap_client) -> None:
    board = make_board()
    done = coap_client(f"coaps://{board.address}/sensor", identity=PSK_ID, key="wrongkey-123456")
    assert "val" not in done.stdout
    board.rt.wait_for(r"coap: PSK handshake failed: identity 'iotlab2024' from .*: bad record MAC")
    assert board.sessions() == 0  # no session left behind


def test_coaps_unknown_identity_gives_no_data_and_psk_failed(make_board, coap_client) -> None:
    board = make_board()
    done = coap_client(f"coaps://{board.address}/sensor", identity="intruder", key=PSK)
    assert "val" not in done.stdout
    board.rt.wait_for(r"coap: PSK handshake failed: identity 'intruder' from .*: unknown PSK identity")
    assert board.sessions() == 0


def test_coaps_psk_comes_from_nvs(make_board, coap_client) -> None:
    board = make_board(psk_id="bench-7", psk="another-key-42")
    assert "val" in coap_client(f"coaps://{board.address}/sensor", identity="bench-7", key="another-key-42").stdout
    assert "val" not in coap_client(f"coaps://{board.address}/sensor", identity=PSK_ID, key=PSK).stdout


def test_plain_get_sensor_works(make_board, coap_client) -> None:
    board = make_board()
    reading = json.loads(coap_client(f"coap://{board.address}/sensor").stdout)
    assert isinstance(reading["val"], int) and isinstance(reading["temp"], float)
    board.rt.wait_for(r"coap: GET /sensor -> 2\.05 \(coap from ")


def test_plain_writes_refused_in_secure_only(make_board, coap_client) -> None:
    board = make_board()  # coap_mode defaults to secure-only
    coap_client(f"coap://{board.address}/light", method="put", payload="1")
    board.rt.wait_for(r"coap: PUT /light -> 4\.01 \(coap from ")
    coap_client(f"coap://{board.address}/ota", method="post")
    board.rt.wait_for(r"coap: POST /ota -> 4\.01 \(coap from ")
    assert coap_client(f"coap://{board.address}/light").stdout.strip() == "0"
    assert not [line for line in board.rt.lines if "ota: Checking" in line]


def test_coaps_light_put_get_and_bad_payload(make_board, coap_client) -> None:
    board = make_board()
    url = f"coaps://{board.address}/light"
    coap_client(url, method="put", identity=PSK_ID, key=PSK, payload="1")
    board.rt.wait_for(r"coap: PUT /light -> 2\.04 \(coaps")
    assert coap_client(url, identity=PSK_ID, key=PSK).stdout.strip() == "1"
    coap_client(url, method="put", identity=PSK_ID, key=PSK, payload="on")
    board.rt.wait_for(r"coap: PUT /light -> 4\.00 \(coaps")
    coap_client(f"coaps://{board.address}/nothing", identity=PSK_ID, key=PSK)
    board.rt.wait_for(r"coap: GET /nothing -> 4\.04 ")
    coap_client(f"coaps://{board.address}/sensor", method="delete", identity=PSK_ID, key=PSK)
    board.rt.wait_for(r"coap: DELETE /sensor -> 4\.05 ")


def test_coaps_post_ota_answers_then_checks(make_board, coap_client) -> None:
    board = make_board()
    coap_client(f"coaps://{board.address}/ota", method="post", identity=PSK_ID, key=PSK)
    board.rt.wait_for(r"coap: POST /ota -> 2\.04 \(coaps")
    board.rt.wait_for(r"ota: (Checking for updates at|Update check failed)")  # the OTA check ran


def test_plain_off_closes_port_5683(make_board, coap_client) -> None:
    board = make_board(coap_mode="off")
    board.rt.wait_for(r"coap: CoAP server started on .*udp/5683 closed \(off\)")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((board.address, 5683))  # nobody holds it


def test_power_off_frees_both_ports(make_board) -> None:
    board = make_board()
    board.power_off()
    for port in (5683, 5684):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((board.address, port))
