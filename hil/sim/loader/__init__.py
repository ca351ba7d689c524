"""The ESP ROM serial loader and the flasher-stub dialect, as esptool sees them.

``LoaderSession`` runs on the board's CPU thread in download mode: it reads SLIP frames from the
UART, answers each command like the ROM (or, after the stub was uploaded and started, like the
stub) and returns a ``LeaveLoader`` when the host asks the chip to run or reboot.
"""

from hil.sim.loader.session import LeaveLoader, LoaderIO, LoaderSession

__all__ = ["LeaveLoader", "LoaderIO", "LoaderSession"]
