"""The invariants checked after every scenario: each one breaks on the bug it is about and holds on the
sound server or firmware; and, run by the plugin, each catches a realistic bug in a scenario that was
written for something else and passes green without the invariant."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hil.console.console import LOADER_SESSION
from hil.console.profile import load_profile
from hil.images.layout import layout_for
from hil.invariants.checks import INVARIANTS, check_all
from hil.invariants.observed import (
    Observed, ObservedCapture, ObservedConsole, ObservedServer, ObservedSlots, SlotImage)
from hil.net.forge import Forger
from hil.net.http import build_request
from hil.net.relay import RecordingRelay
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


def test_store_agrees_with_capture(start: Start, tmp_path: Path) -> None:
    """Uploads through a recording relay: accepted 1, a replay of it and a forgery (refused). The
    capture and the store agree; a row the capture shows only refused, or a capture paired with a
    store that lacks what it accepted, break the invariant. tshark reads the same verdicts."""
    server, other = start(), start()
    forged = WIRE.body(Forger.flip_mac(WIRE.parse_request(WIRE.upload_route, packet(5))))
    with RecordingRelay(tmp_path / "up.pcap", upstream=("127.0.0.1", server.port)) as relay:
        host, port = relay.address
        for body in (packet(1), packet(1), forged):
            request = build_request("POST", WIRE.upload_route, body, host=f"{host}:{port}",
                                    headers={"Content-Type": "application/json"})  # fmt: skip
            send_http(request.raw, (host, port), method="POST")
    path = relay.stop().path
    capture = ObservedCapture(path, ObservedServer(server.url, server.state), WIRE)
    assert [(u.nonce, u.accepted) for u in capture.uploads] == [(1, True), (1, False), (5, False)]
    if shutil.which("tshark"):
        codes = subprocess.run(["tshark", "-r", str(path), "-d", f"tcp.port=={server.port},http", "-Y",
                                "http.response", "-T", "fields", "-e", "http.response.code"],
                               capture_output=True, text=True, timeout=60, check=True).stdout.split()  # fmt: skip
        assert codes == ["200", "403", "403"], codes
    assert verdict(Observed(captures=[capture]), "server.store-agrees-with-capture").holds
    readings = Readings(KEYS.device_id, 1_700_000_000, (Reading("Vac1", 1.0),))
    server.state.storage.store_readings(5, readings)  # the refused forgery's nonce, stored all the same
    broken = verdict(Observed(captures=[capture]), "server.store-agrees-with-capture").describe()
    assert "EW-0001 nonce 5 is stored, but the capture shows it only refused" in broken
    elsewhere = ObservedCapture(path, ObservedServer(other.url, other.state), WIRE)  # a store that never got it
    broken = verdict(Observed(captures=[elsewhere]), "server.store-agrees-with-capture").describe()
    assert "EW-0001 nonce 1 accepted, nothing of it is stored" in broken


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
    bare.write_text(
        '[meta]\nname = "bare"\ndescription = "no nonce events"\n\n[events]\n"boot.version" = "v(?P<version>\\\\S+)"\n'
    )
    profile = load_profile(str(bare))
    (result,) = [v for v in check_all(Observed(consoles=[ObservedConsole("b1", log, profile)]))
                 if v.name == "device.nonce-committed-before-send"]  # fmt: skip
    assert not result.applied


def console_log(tmp_path: Path, lines: list[str]) -> Path:
    """A board log as the console writes it: timestamps and colours around the firmware's lines, the
    harness's own lines (``>>> cmd``, ``--- hil: ... ---``) as they are."""
    log = tmp_path / "board.log"
    log.write_text("".join(f"{line}\n" if line.startswith(("---", " ")) else
                           f"[12:00:00.000] [+    0.100] \x1b[0;32m{line}\x1b[0m\n" for line in lines))  # fmt: skip
    return log


LOADED = "I (16) security: Nonce loaded from NVS: {}"
COMMITTED = "I (38) security: Nonce {} committed to NVS"
SENT = "I (40) upload: Sending 10 readings (400 bytes, plain) to http://10.0.0.1:5001/api/upload/data, nonce {}"
STATUS = "status: version=1.0.0 nonce={} server=http://10.0.0.1:5001"
RESET = "rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)"
SOUND = [LOADED.format(10000), COMMITTED.format(10001), SENT.format(10001), RESET, LOADED.format(10001),
         COMMITTED.format(10002), SENT.format(10002), COMMITTED.format(10003), SENT.format(10003),
         STATUS.format(10003), RESET, LOADED.format(10003)]  # fmt: skip


@pytest.mark.parametrize("lines, broken", [
    (SOUND, None),
    ([*SOUND, LOADER_SESSION, RESET, LOADED.format(10000), COMMITTED.format(10001)], None),  # re-provisioned
    ([*SOUND, "waiting for download", LOADED.format(10000)], None),  # the ROM's own line, where a log has it
    ([*SOUND, RESET, LOADED.format(10002)], "nonce.loaded 10002 (log line 14) after nonce 10003 was"),
    ([*SOUND, STATUS.format(0)], "status 0 (log line 13) after nonce 10003 was loaded"),
    ([*SOUND, COMMITTED.format(10003)], "nonce.committed 10003 (log line 13) after nonce 10003 was loaded"),
    ([*SOUND, SENT.format(10003)], "upload.sending 10003 (log line 13) after nonce 10003 was loaded"),
    ([LOADED.format(10000), SENT.format(10001), RESET, LOADED.format(10000)], "after nonce 10001 was sent"),
], ids=["sound", "flashed-between", "rom-download-between", "stale-load", "status-reset", "commit-again",
        "resent", "send-not-persisted"])  # fmt: skip
def test_nonce_never_decreases(tmp_path: Path, lines: list[str], broken: str | None) -> None:
    observed = Observed(consoles=[ObservedConsole("b1", console_log(tmp_path, lines), IDF)])
    result = verdict(observed, "device.nonce-never-decreases")
    assert result.holds is (broken is None), result.describe()
    if broken:
        assert broken in result.describe()


LAYOUT = layout_for("esp32")
V1, V2 = SlotImage("app-v1", "1.0.0", b"v1" * 64), SlotImage("app-v2", "2.0.0", b"v2" * 64)
BITFLIP = SlotImage("bitflip", "2.0.0", b"v2" * 63 + b"v3")
UPDATE = [RESET, "I (15) ecowatt: Firmware Version: 1.0.0", "I (90) ota: Download progress 100% (chunk 1/1)",
          "I (95) ota: Rebooting into 2.0.0", RESET, "I (15) ecowatt: Firmware Version: 2.0.0",
          "I (30) ota: Firmware 2.0.0 confirmed (image_ok set)", "status: version=2.0.0 nonce=0 server="]  # fmt: skip
FAILED = [*UPDATE[:3], "E (92) ota: Update to 2.0.0 failed (HASH_MISMATCH): SHA-256 of the image does not match"]


class FakeSlots:
    """Flash with what each slot holds, compared as ``Board.flash_matches`` does; counts loader sessions."""

    def __init__(self, primary: bytes, secondary: bytes) -> None:
        self.flash = {LAYOUT.primary_slot: primary, LAYOUT.secondary_slot: secondary}
        self.sessions = 0

    def matches(self, regions) -> list[bool]:
        self.sessions += 1
        return [self.flash[r.offset].ljust(r.size, b"\xff")[: r.size] == r.data for r in regions]


@pytest.mark.parametrize("lines, primary, secondary, broken", [
    (UPDATE, V2, V1, []),
    (UPDATE, BITFLIP, V1, []),  # a variant of the version booted: not this invariant's business
    (UPDATE, V1, V2, ["last booted 2.0.0 (line 8), but the primary slot at 0x20000 holds app-v1, not an image of 2.0.0",
                      "update from 1.0.0 confirmed (line 7), but the secondary slot at 0x170000 holds app-v2, "
                      "not an image of 1.0.0"]),
    (FAILED, V1, b"", []),
    (FAILED, V1, V2, ["update failed (line 4), but the secondary slot at 0x170000 holds none of the index images, "
                      "not erased"]),
    ([*FAILED, "I (15) ecowatt: Firmware Version: 3.1.0"], V1, b"", ["booted 3.1.0 (log line 5), a version no index"]),
], ids=["updated", "variant", "booted-in-place", "failed", "partial-left", "unknown-version"])  # fmt: skip
def test_slots_hold_their_images(
    tmp_path: Path, lines: list[str], primary: SlotImage, secondary: SlotImage | bytes, broken: list[str]
) -> None:
    flash = FakeSlots(primary.data, secondary.data if isinstance(secondary, SlotImage) else secondary)
    console = ObservedConsole("b1", console_log(tmp_path, lines), IDF)
    observed = Observed(consoles=[console], slots=[ObservedSlots(console, LAYOUT, (V1, V2, BITFLIP), flash.matches)])
    result = verdict(observed, "ota.slots-hold-their-images")
    assert len(result.violations) == len(broken), result.describe()
    assert all(b in v for b, v in zip(broken, result.violations, strict=True)), result.describe()
    assert flash.sessions <= 1  # every slot in one loader session


def test_slots_are_not_judged_without_a_booted_version(tmp_path: Path) -> None:
    flash = FakeSlots(b"", b"")
    console = ObservedConsole("b1", console_log(tmp_path, [RESET, "invalid header: 0xffffffff"]), IDF)
    observed = Observed(consoles=[console], slots=[ObservedSlots(console, LAYOUT, (V1, V2), flash.matches)])
    assert verdict(observed, "ota.slots-hold-their-images").holds and flash.sessions == 0


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


def test_secrets_not_in_artifacts(tmp_path: Path) -> None:
    secrets = SecretRegistry()
    secrets.register(KEYS.hmac_key, "hmac_key of EW-0001")
    capture, note = tmp_path / "test.pcap", tmp_path / "stored.txt"
    capture.write_bytes(b"\xd4\xc3\xb2\xa1" + b"\x00" * 20 + b"POST /api/upload/data HTTP/1.1")
    note.write_text("Vac1=230.0 nonce=10001\n")
    observed = Observed(artifacts=[capture, note], secrets=secrets)
    assert verdict(observed, "secrets.not-in-artifacts").holds
    capture.write_bytes(capture.read_bytes() + KEYS.hmac_key)  # raw key bytes in a packet
    note.write_text(f"debug_key={KEYS.hmac_key.hex()}\n")
    described = verdict(observed, "secrets.not-in-artifacts").describe()
    assert "in test.pcap" in described and "in stored.txt" in described


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
    pytest.param("--hil-sim-defect=nonce-reset-on-update", "tests/test_ota.py::test_ota_v1_to_v2_succeeds",
                 "device.nonce-never-decreases", id="nonce-reset-on-update"),
    pytest.param("--hil-sim-defect=mcuboot-boot-in-place", "tests/test_ota.py::test_ota_v1_to_v2_succeeds",
                 "ota.slots-hold-their-images", id="mcuboot-boot-in-place"),
    pytest.param("--hil-sim-defect=hmac-key-in-url", "tests/test_upload.py::test_upload_accepted_and_stored_intact",
                 "secrets.not-in-artifacts", id="hmac-key-in-url"),
]  # fmt: skip


@pytest.mark.parametrize("defect, scenario, invariant", CAUGHT)
def test_an_invariant_catches_what_the_scenario_does_not(
    defect: str, scenario: str, invariant: str, tmp_path: Path
) -> None:
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
