"""Virtual boards as bench boards: the one harness module that launches virtual boards (``hil sim``
processes) and describes each like an inventory entry, with the virtual board's power switch as its
power driver. Nothing else of the harness imports :mod:`hil.sim`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from hil.board.drivers import PowerDriver
from hil.board.spec import BoardSpec
from hil.sim.defects import CATALOGUE as DEFECTS
from hil.sim.power import PowerSwitch
from hil.sim.process import VirtualBoardProcess
from hil.sim.usb_jtag import DEFAULT_ENUMERATION_GAP

__all__ = ["DEFECTS", "VIRTUAL_CAPABILITIES", "VirtualBoardSource", "virtual_board_address"]

VIRTUAL_CAPABILITIES = frozenset({"virtual", "power", "power-cut", "reset", "sniff"})


def virtual_board_address(state_dir: Path) -> str:
    """A virtual board's own loopback IP in 127.0.0.0/8, derived from its (unique) state directory:
    boards of concurrent sessions and workers are told apart by address, as on a bench network."""
    a, b, c = hashlib.sha256(str(state_dir).encode()).digest()[:3]
    return f"127.{a}.{b}.{1 + c % 254}"


class VirtualBoardSource:
    """One virtual board for a session or worker, started on :meth:`start`, described like an
    inventory entry; :meth:`stop` ends its process. ``usb_jtag``: its port is the chip's USB-Serial/JTAG
    (re-enumerates on power-on and EN resets; `hil sim --usb-jtag`), reset the USB-JTAG way. ``netns``:
    its network is a namespace of its own behind a veth pair (`hil sim --netns`), as a real board's.
    ``timing``: the device time of its boot path (`hil sim --timing`, ``instant`` or ``bench``)."""

    def __init__(
        self,
        name: str,
        state_dir: Path,
        *,
        chip: str,
        defects: tuple[str, ...] = (),
        log_path: Path | None = None,
        usb_jtag: bool = False,
        netns: bool = False,
        timing: str = "instant",
    ) -> None:
        self.process = VirtualBoardProcess(
            name,
            state_dir,
            chip=chip,
            defects=defects,
            log_path=log_path,
            net_address=virtual_board_address(state_dir),
            usb_jtag_gap=DEFAULT_ENUMERATION_GAP if usb_jtag else None,
            netns=netns,
            timing=timing,
        )

    def start(self) -> tuple[BoardSpec, PowerDriver]:
        """Start the board; its inventory entry and its power driver (the control socket)."""
        url = self.process.start()
        info = json.loads((self.process.state_dir / "board.json").read_text())
        defects = f", defects: {', '.join(self.process.defects)}" if self.process.defects else ""
        usb_jtag = self.process.usb_jtag_gap is not None
        spec = BoardSpec(
            name=self.process.name,
            port=url,
            chip=self.process.chip,
            mac=info.get("mac"),
            capabilities=VIRTUAL_CAPABILITIES,
            # --netns: the host-side veth and the board's address behind it, its namespace for the preflight
            network_interface=info.get("interface") or "lo",
            network_address=info.get("address", "127.0.0.1"),
            network_namespace=info.get("namespace"),
            # No RC on its EN: it takes DTR/RTS changes in order and EN falling stops the CPU before the
            # next change is read, so a reset needs no pulse width (a real board's needs ~100 ms), and
            # IO0 low after EN rose is latched for the strapping (hil.sim.reset_lines).
            reset_pulse=0.0,
            # Its link is TCP: a faster UART rate gains nothing and change_baud costs ~0.2 s a flash
            # (bench/flash_time.py); selftest/flashing/test_flash_baud.py still changes it.
            flash_baud=0,
            # its USB-Serial/JTAG decodes DTR/RTS itself: esptool's USB-JTAG sequence, as on a real one
            reset="usb-jtag" if usb_jtag else "auto",
            timing="virtual",  # its own, faster profile (hil.board.timing): its floors decide
            # `--timing bench`: the boot path's device time, so the bounds follow what the board takes
            timing_overrides=tuple(sorted(info.get("timing", {}).items())),
            description=f"virtual ESP32 (hil sim{', USB-Serial/JTAG' if usb_jtag else ''}){defects}",
        )
        return spec, PowerSwitch(self.process.control_socket)

    def stop(self) -> None:
        """Stop the board's process (idempotent)."""
        self.process.stop()
