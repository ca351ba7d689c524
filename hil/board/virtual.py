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

__all__ = ["DEFECTS", "VIRTUAL_CAPABILITIES", "VirtualBoardSource", "virtual_board_address"]

VIRTUAL_CAPABILITIES = frozenset({"virtual", "power", "power-cut", "reset", "sniff"})


def virtual_board_address(state_dir: Path) -> str:
    """A virtual board's own loopback IP in 127.0.0.0/8, derived from its (unique) state directory:
    boards of concurrent sessions and workers are told apart by address, as on a bench network."""
    a, b, c = hashlib.sha256(str(state_dir).encode()).digest()[:3]
    return f"127.{a}.{b}.{1 + c % 254}"


class VirtualBoardSource:
    """One virtual board for a session or worker, started on :meth:`start`, described like an
    inventory entry; :meth:`stop` ends its process."""

    def __init__(
        self, name: str, state_dir: Path, *, chip: str, defects: tuple[str, ...] = (), log_path: Path | None = None
    ) -> None:
        self.process = VirtualBoardProcess(
            name, state_dir, chip=chip, defects=defects, log_path=log_path, net_address=virtual_board_address(state_dir)
        )

    def start(self) -> tuple[BoardSpec, PowerDriver]:
        """Start the board; its inventory entry and its power driver (the control socket)."""
        url = self.process.start()
        info = json.loads((self.process.state_dir / "board.json").read_text())
        defects = f", defects: {', '.join(self.process.defects)}" if self.process.defects else ""
        spec = BoardSpec(
            name=self.process.name,
            port=url,
            chip=self.process.chip,
            mac=info.get("mac"),
            capabilities=VIRTUAL_CAPABILITIES,
            network_interface="lo",
            network_address=info.get("address", "127.0.0.1"),
            # No RC on its EN: it takes DTR/RTS changes in order and EN falling stops the CPU before the
            # next change is read, so a reset needs no pulse width (a real board's needs ~100 ms), and
            # IO0 low after EN rose is latched for the strapping (hil.sim.reset_lines).
            reset_pulse=0.0,
            description=f"virtual ESP32 (hil sim){defects}",
        )
        return spec, PowerSwitch(self.process.control_socket)

    def stop(self) -> None:
        """Stop the board's process (idempotent)."""
        self.process.stop()
