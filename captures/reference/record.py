"""Re-make the reference captures of this folder (run by hand, as root: it sniffs ``lo``).

    python captures/reference/record.py [upload|ota|all]

A virtual board (``hil sim``) is flashed with bootloader + ``app-v1`` + an NVS partition for lab
device EW-0001 (TEST ONLY keys from firmware_builds/keys), pointed at a built-in reference server
over plain HTTP, while a :class:`hil.net.capture.Sniffer` records the board's address:

- ``upload``: three ``upload`` console commands → ``upload-session.pcap``, registry → ``devices.json``;
- ``ota``: ``ota check`` against a server offering ``fota-app-v2`` → ``ota-session.pcap``
  (check, manifest, every chunk, status reports; until the new image confirmed itself).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from hil.board.board import Board
from hil.board.spec import BoardSpec
from hil.console.profile import load_profile
from hil.flashing import FlashRegion
from hil.images.fota_build import firmware_dir_with
from hil.images.index import load_index
from hil.images.keys import KeyStore
from hil.images.layout import layout_for
from hil.images.nvs_gen import DeviceIdentity, build_nvs, lab_identity
from hil.net.capture import Sniffer
from hil.net.summary import format_table, summarize_pcap
from hil.server.config import DeviceKeys, ServerConfig
from hil.server.handle import ServerHandle
from hil.sim.power import PowerSwitch
from hil.sim.process import VirtualBoardProcess

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BOARD_ADDRESS = "127.0.80.2"  # the board's own loopback address: the sniffer's filter
ADMIN_TOKEN = "reference-capture-admin"  # TEST ONLY, a throwaway server
UPLOADS = 3
TIMEOUT = 30.0
OTA_TIMEOUT = 180.0
COMMENT = ("TEST ONLY keys (derived from firmware_builds/keys, the lab's test key store): the registry the "
           "reference captures were made with. Never use them on a real device.")


def write_registry(identity: DeviceIdentity, path: Path) -> dict[str, DeviceKeys]:
    """The server registry of *identity*, also written to *path* (with the TEST ONLY comment)."""
    doc = {"_comment": COMMENT, "devices": [{"device_id": identity.device_id, "hmac_key": identity.hmac_key.hex(),
                                             "aes_key": identity.aes_key.hex()}]}
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return {identity.device_id: DeviceKeys(identity.device_id, identity.hmac_key, identity.aes_key)}


def record(kind: str, workdir: Path) -> Path:
    """Make one reference capture (``upload`` or ``ota``); returns the pcap path."""
    index = load_index(ROOT / "firmware_builds")
    base = lab_identity(KeyStore(index.directory / "keys"))
    registry = write_registry(base, HERE / "devices.json") if kind == "upload" else \
        {base.device_id: DeviceKeys(base.device_id, base.hmac_key, base.aes_key)}
    firmware_dir = firmware_dir_with(index, ["app-v2"], workdir / "fw") if kind == "ota" else None
    config = ServerConfig(db_path=workdir / f"{kind}.sqlite3", devices=registry, admin_token=ADMIN_TOKEN,
                          firmware_dir=firmware_dir)
    sim = VirtualBoardProcess("reference", workdir / f"board-{kind}", net_address=BOARD_ADDRESS)
    pcap = HERE / f"{kind}-session.pcap"
    with ServerHandle(config) as server, sim:
        info = json.loads((sim.state_dir / "board.json").read_text())
        spec = BoardSpec("reference", sim.url or "", chip="esp32", mac=info.get("mac"),
                         network_interface="lo", network_address=BOARD_ADDRESS)
        board = Board(spec, profile=load_profile(), power=PowerSwitch(sim.control_socket)).open()
        try:
            identity = base.replace(server_url=server.url)
            nvs = FlashRegion(layout_for(index.chip).nvs, build_nvs(identity, workdir / "nvs.bin").read_bytes(),
                              "nvs (reference capture)")
            board.flash(flash_plan(index, "app-v1", nvs=nvs))
            board.console.expect_event("nonce.loaded", TIMEOUT, nonce=str(identity.nonce))
            with Sniffer(pcap, host=BOARD_ADDRESS) as sniffer:
                if kind == "upload":
                    for n in range(1, UPLOADS + 1):
                        board.console.send("upload")
                        board.console.expect_event("upload.ok", TIMEOUT, nonce=str(identity.nonce + n),
                                                   unless=["upload.rejected", "upload.gave_up"])
                else:
                    board.console.send("ota check")
                    board.console.expect_event("ota.confirmed", OTA_TIMEOUT, version="2.0.0", allow_reboot=True,
                                               unless=["ota.failed", "ota.download_failed", "ota.reverted"])
                    # the 'success' status report follows the confirm; the console answers once boot work is done
                    board.console.send("status")
                    board.console.expect_event("status", TIMEOUT, version="2.0.0")
                sniffer.sync()
        finally:
            board.close()
    return pcap


def main(argv: list[str] | None = None) -> int:
    """Record the captures named on the command line and print their flow tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="?", default="all", choices=("upload", "ota", "all"))
    args = parser.parse_args(argv)
    kinds = ("upload", "ota") if args.which == "all" else (args.which,)
    with tempfile.TemporaryDirectory(prefix="hil-reference-") as tmp:
        for kind in kinds:
            pcap = record(kind, Path(tmp))
            print(f"{pcap.relative_to(ROOT)} ({pcap.stat().st_size} bytes)")
            print(format_table(summarize_pcap(pcap)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
