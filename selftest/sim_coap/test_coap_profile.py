"""The ecowatt-idf profile's coap.* events match the lines the virtual board really prints."""

from __future__ import annotations

from hil.console import load_profile, strip_ansi
from sim_coap.conftest import PSK, PSK_ID


def _fields(event: str, lines: list[str]) -> dict[str, str]:
    regex = load_profile("ecowatt-idf").event(event)
    found = [m for m in (regex.search(strip_ansi(line)) for line in lines) if m]
    assert found, f"no line matches {event}:\n" + "\n".join(lines)
    return {k: v for k, v in found[-1].groupdict().items() if v is not None}


def test_profile_events_match_the_board_lines(make_board, coap_client) -> None:
    board = make_board()
    coap_client(f"coaps://{board.address}/sensor", identity=PSK_ID, key=PSK)
    coap_client(f"coaps://{board.address}/sensor", identity="intruder", key=PSK)
    coap_client(f"coap://{board.address}/light", method="put", payload="1")
    board.rt.wait_for(r"coap: PUT /light")
    lines = board.rt.lines
    assert _fields("coap.started", lines) == {
        "address": board.address,
        "plain": "plain",
        "mode": "secure-only",
        "secure": "DTLS-PSK",
    }
    ok = _fields("coap.psk_ok", lines)
    assert ok["identity"] == PSK_ID and float(ok["ms"]) >= 0 and ok["cipher"].startswith("TLS-PSK-WITH-")
    assert _fields("coap.psk_failed", lines)["identity"] == "intruder"
    request = _fields("coap.request", lines)
    assert (request["method"], request["path"], request["code"], request["scheme"]) == ("PUT", "/light", "4.01", "coap")
    assert _fields("coap.session_closed", lines)["reason"] == "peer closed the connection"
