"""The device app: start lines, version banner from the descriptor, NVS identity, console."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

from hil.images import mcuboot as mb
from hil.images.layout import layout_for
from hil.sim.booted import BootedImage
from hil.sim.firmware import start
from hil.sim.runtime import Reboot
from sim_boot.fakes import FakeFlash, FakeRuntime, _write, boot, install

LAYOUT = layout_for("esp32")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# The shared contract's regexes (the `ecowatt-idf` profile), matched after stripping colours.
CONTRACT = {
    "boot.mcuboot": r"\*\*\* Booting MCUboot build (?P<build>\S+) \*\*\*",
    "boot.validated": r"Loading image (?P<index>\d+) - slot (?P<slot>\d+) from flash",
    "boot.swap": r"Image index: (?P<index>\d+), Swap type: (?P<swap_type>\w+)",
    "app.started": r"main_task: Calling app_main\(\)",
    "boot.version": r"Firmware Version: (?P<version>\S+)",
    "nonce.loaded": r"Nonce loaded from NVS: (?P<nonce>\d+)",
    "status": r"status: version=(?P<version>\S+) nonce=(?P<nonce>\d+) server=(?P<server>\S*)",
    "console.unknown": r"console: unknown command '(?P<command>[^']*)'",
    "nvs.unprovisioned": r"no device identity provisioned",
}
IDF_LINE = re.compile(r"^[EWI] \(\d+\) [\w.]+: ")


def events(rt: FakeRuntime) -> dict[str, dict[str, str]]:
    found = {}
    for line in rt.lines:
        plain = ANSI.sub("", line)
        for name, pattern in CONTRACT.items():
            match = re.search(pattern, plain)
            if match and name not in found:
                found[name] = match.groupdict()
    return found


@pytest.fixture(scope="module")
def provisioned(tmp_path_factory) -> bytes:
    tmp = tmp_path_factory.mktemp("nvs-app")
    (tmp / "in.csv").write_text(
        "key,type,encoding,value\necowatt,namespace,,\ndevice_id,data,string,EW-0001\n"
        "nonce,data,u32,10000\nhmac_key,data,hex2bin," + "ab" * 32 + "\n"
        "aes_key,data,hex2bin," + "cd" * 16 + "\nserver_url,data,string,https://127.0.0.1:5001\n")
    done = subprocess.run([sys.executable, "-m", "esp_idf_nvs_partition_gen", "generate",
                           str(tmp / "in.csv"), str(tmp / "nvs.bin"), hex(LAYOUT.nvs_size)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return (tmp / "nvs.bin").read_bytes()


@pytest.fixture
def board(artifacts, provisioned) -> FakeFlash:
    flash = FakeFlash()
    install(flash, artifacts, primary="v2")
    _write(flash, LAYOUT.nvs, provisioned)
    return flash


def test_provisioned_boot_emits_contract_events(board):
    rt = boot(board, inputs=("status", "foo"))
    ev = events(rt)
    assert ev["boot.mcuboot"] == {"build": "v2.1.0"}
    assert ev["boot.swap"] == {"index": "0", "swap_type": "none"}
    assert ev["boot.version"] == {"version": "2.0.0"} and "app.started" in ev
    assert ev["nonce.loaded"] == {"nonce": "10000"}
    assert ev["status"] == {"version": "2.0.0", "nonce": "10000",
                            "server": "https://127.0.0.1:5001"}
    assert ev["console.unknown"] == {"command": "foo"} and "nvs.unprovisioned" not in ev
    plain = [ANSI.sub("", ln) for ln in rt.lines]
    assert "I (3) cpu_start: Pro cpu start user code" in plain
    assert any(p.endswith("app_init: Project name:     ecowatt") for p in plain)
    assert any(p.endswith("app_init: App version:      2.0.0") for p in plain)
    assert any(p.endswith("app_init: Secure version:   1") for p in plain)
    idf = [ln for ln in rt.lines if ln.startswith("\033[0;3")]
    assert idf and all(IDF_LINE.match(ANSI.sub("", ln)) and ln.endswith("\033[0m") for ln in idf)


def test_secrets_never_logged(board, artifacts):
    rt = boot(board, inputs=("status",))
    assert "ab" * 16 not in rt.text and "cd" * 16 not in rt.text
    identity = start(FakeRuntime(board), booted(artifacts.images["v2"])).identity
    assert identity is not None and identity.hmac_key == bytes.fromhex("ab" * 32)
    assert "ab" * 16 not in repr(identity)


def booted(image: bytes) -> BootedImage:
    """What MCUboot hands the app for a signed ``image`` in the primary slot."""
    header = mb.parse_header(image)
    return BootedImage(LAYOUT.primary_slot, header,
                       image[header.hdr_size:header.hdr_size + header.img_size], 0)


def test_blank_nvs_still_boots_with_warning(artifacts):
    flash = FakeFlash()
    install(flash, artifacts)
    ev = events(boot(flash, inputs=("status",)))
    assert "nvs.unprovisioned" in ev and "nonce.loaded" not in ev
    assert ev["status"] == {"version": "1.0.0", "nonce": "0", "server": ""}


def test_hardcoded_version_defect(board):
    assert events(boot(board))["boot.version"] == {"version": "2.0.0"}
    assert events(boot(board, defects=("app-version-hardcoded",)))["boot.version"] == \
        {"version": "1.0.0"}


def test_nonce_commit_survives_reboot(board, artifacts):
    device = start(FakeRuntime(board), booted(artifacts.images["v2"]))
    device.commit_nonce(10001)
    assert device.identity.nonce == 10001
    assert events(boot(board))["nonce.loaded"] == {"nonce": "10001"}


def test_reboot_command_raises_reboot(board):
    with pytest.raises(Reboot):
        boot(board, inputs=("reboot",))


def test_boot_to_banner_is_fast(board):
    began = time.perf_counter()
    rt = boot(board)
    elapsed = time.perf_counter() - began
    assert "boot.version" in events(rt) and elapsed < 0.25, elapsed
