"""The invariants checked after every scenario: each one breaks on the bug it is about and holds on the
sound server or firmware; and, run by the plugin, each catches a realistic bug in a scenario that was
written for something else and passes green without the invariant."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hil.console.profile import load_profile
from hil.invariants.checks import INVARIANTS, check_all
from hil.invariants.observed import Observed, ObservedConsole, ObservedServer
from hil.net.forge import Forger
from hil.net.http import build_request
from hil.net.replay import send_http
from hil.protocol.readings import REGISTERS, Reading, Readings
from hil.report.secrets import SecretRegistry
from hil.server import DeviceKeys, ServerConfig, ServerHandle
from hil.wire.profile import load_profile as load_wire

ROOT = Path(__file__).resolve().parents[2]
WIRE = load_wire("ecowatt-api")
KEYS = DeviceKeys("EW-0001", bytes(range(32)), bytes(range(16)))  # TEST ONLY
IDF = load_profile("ecowatt-idf")
Start = Callable[..., ServerHandle]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    handles: list[ServerHandle] = []

    def factory(*defects: str, rate_limit: int = 0) -> ServerHandle:
        config = ServerConfig(db_path=tmp_path / f"db{len(handles)}", devices={KEYS.device_id: KEYS},
                              admin_token="selftest-admin", rate_limit=rate_limit, wire=WIRE)  # fmt: skip
        handles.append(ServerHandle(config, defects=defects).start())
        return handles[-1]

    yield factory
    for handle in handles:
        handle.stop()


def upload(server: ServerHandle, body: bytes) -> int:
    request = build_request("POST", WIRE.upload_route, body, host=f"127.0.0.1:{server.port}",
                            headers={"Content-Type": "application/json"})  # fmt: skip
    reply = send_http(request.raw, ("127.0.0.1", server.port), method="POST")
    assert reply.status is not None
    return reply.status


def packet(nonce: int) -> bytes:
    readings = Readings(KEYS.device_id, 1_700_000_000, tuple(Reading(r, 1.0) for r in REGISTERS))
    return WIRE.body(Forger(WIRE).craft(KEYS.device_id, nonce, readings, key=KEYS))


def verdict(observed: Observed, name: str):
    (found,) = [v for v in check_all(observed) if v.name == name]
    return found


def test_every_invariant_is_documented_and_named_once() -> None:
    names = [i.name for i in INVARIANTS]
    assert len(set(names)) == len(names) and all(i.guarantees for i in INVARIANTS)


@pytest.mark.parametrize("defects", [(), ("malformed-json-500",)], ids=["sound", "defect"])
def test_never_5xx(start: Start, defects: tuple[str, ...]) -> None:
    server = start(*defects)
    upload(server, b"{not json")
    result = verdict(Observed(servers=[ObservedServer(server.url, server.state)]), "server.never-5xx")
    assert result.holds is not bool(defects), result.describe()
    if defects:
        assert "answered 500" in result.describe()


@pytest.mark.parametrize("defects", [(), ("rate-limit-refusals-unlogged",)], ids=["sound", "defect"])
def test_refusal_recorded(start: Start, defects: tuple[str, ...]) -> None:
    server = start(*defects, rate_limit=1)
    assert [upload(server, packet(1)), upload(server, packet(2)), upload(server, b"[]")] == [200, 429, 400]
    result = verdict(Observed(servers=[ObservedServer(server.url, server.state)]), "server.refusal-recorded")
    assert result.holds is not bool(defects), result.describe()
    if defects:
        assert "2 refusals answered" in result.describe() and "1 security events" in result.describe()


def test_accepted_stored_once(start: Start) -> None:
    server = start()
    assert upload(server, packet(1)) == 200
    observed = Observed(servers=[ObservedServer(server.url, server.state)])
    assert verdict(observed, "server.accepted-stored-once").holds
    readings = Readings(KEYS.device_id, 1_700_000_000, (Reading("Vac1", 1.0),))
    server.state.storage.store_readings(1, readings)  # the same packet's readings stored a second time
    broken = verdict(observed, "server.accepted-stored-once").describe()
    assert "EW-0001 nonce 1 Vac1 stored more than once" in broken
    server.state.storage.store_readings(7, readings)  # stored without ever being accepted
    assert "1 uploads accepted, 2 stored" in verdict(observed, "server.accepted-stored-once").describe()


SENDING = "I (40) upload: Sending 10 readings (400 bytes, plain) to http://10.0.0.1:5001/api/upload/data, nonce 10001"
COMMIT = "I (38) security: Nonce 10001 committed to NVS"


@pytest.mark.parametrize("lines, holds", [([COMMIT, SENDING], True), ([SENDING], False), ([SENDING, COMMIT], False)],
                         ids=["commit-then-send", "no-commit", "commit-after-send"])  # fmt: skip
def test_nonce_committed_before_send(tmp_path: Path, lines: list[str], holds: bool) -> None:
    log = tmp_path / "board.log"
    log.write_text("".join(f"[12:00:00.000] [+    0.100] \x1b[0;32m{line}\x1b[0m\n" for line in lines))
    result = verdict(Observed(consoles=[ObservedConsole("b1", log, IDF)]), "device.nonce-committed-before-send")
    assert result.holds is holds, result.describe()


def test_nonce_check_does_not_apply_without_the_events(tmp_path: Path) -> None:
    log = tmp_path / "board.log"
    log.write_text(SENDING + "\n")
    bare = tmp_path / "bare.toml"  # a team's profile that names no nonce events
    bare.write_text('[meta]\nname = "bare"\ndescription = "no nonce events"\n\n[events]\n"boot.version" = "v(?P<version>\\\\S+)"\n')
    profile = load_profile(str(bare))
    (result,) = [v for v in check_all(Observed(consoles=[ObservedConsole("b1", log, profile)]))
                 if v.name == "device.nonce-committed-before-send"]  # fmt: skip
    assert not result.applied


@pytest.mark.parametrize("encode", [bytes.hex, lambda k: k.hex().upper(), lambda k: base64.b64encode(k).decode()],
                         ids=["hex", "HEX", "base64"])  # fmt: skip
def test_secrets_not_on_console(tmp_path: Path, encode) -> None:
    secrets = SecretRegistry()
    secrets.register(KEYS.hmac_key, "hmac_key of EW-0001")
    log = tmp_path / "board.log"
    log.write_text("I (5) upload: ready\n")
    observed = Observed(consoles=[ObservedConsole("b1", log, IDF)], secrets=secrets)
    assert verdict(observed, "secrets.not-on-console").holds
    log.write_text(f"D (6) upload: key {encode(KEYS.hmac_key)}\n")
    assert "hmac_key of EW-0001 appears" in verdict(observed, "secrets.not-on-console").describe()


# A scenario written for something else, green against the defect without the invariants, and the
# invariant that catches the defect there.
CAUGHT = [
    pytest.param("--hil-sim-defect=nonce-not-persisted", "tests/test_upload.py::test_upload_accepted_and_stored_intact",
                 "device.nonce-committed-before-send", id="nonce-not-persisted"),
    pytest.param("--hil-sim-defect=coap-psk-logged", "tests/test_upload.py::test_upload_accepted_and_stored_intact",
                 "secrets.not-on-console", id="coap-psk-logged"),
    pytest.param("--hil-server-defect=rate-limit-refusals-unlogged",
                 "tests/test_upload_server.py::test_rate_limit_refuses_a_burst", "server.refusal-recorded",
                 id="rate-limit-refusals-unlogged"),
]  # fmt: skip


@pytest.mark.parametrize("defect, scenario, invariant", CAUGHT)
def test_an_invariant_catches_what_the_scenario_does_not(defect: str, scenario: str, invariant: str,
                                                        tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "ESPTOOL_"))}

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        out = tmp_path / str(len(extra))
        cmd = [sys.executable, "-m", "pytest", scenario, "-q", "-p", "no:cacheprovider", "-n", "0", "--hil-virtual",
               defect, f"--hil-report-dir={out}", f"--hil-logs-dir={out / 'logs'}", *extra]  # fmt: skip
        return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)

    alone = run("--hil-no-invariants")
    assert alone.returncode == 0, f"the scenario alone already catches {defect}:\n{alone.stdout[-2000:]}"
    result = run()
    assert result.returncode == 1, result.stdout[-3000:]
    assert "InvariantBroken" in result.stdout and f"{invariant}: BROKEN" in result.stdout, result.stdout[-3000:]
