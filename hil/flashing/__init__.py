"""hil.flashing: esptool driven in-process on a board's open port, skip-if-identical per region."""

from hil.flashing.esptool_host import FlashError, FlashTimeout, clean_environment
from hil.flashing.flasher import (
    FlashTarget,
    LoaderEntry,
    Restart,
    apply_plan,
    erase_port,
    flash_port,
    verify_port,
)
from hil.flashing.identity import ExpectedIdentity, IdentityMismatch
from hil.flashing.plan import (
    FlashRegion,
    FlashReport,
    PlannedRegion,
    RegionFromFlash,
    RegionResult,
    plan_from,
    plan_from_index,
    region,
)
from hil.flashing.session import FlashConnectError, FlashSession
from hil.flashing.timing import FlashTiming

__all__ = [
    "ExpectedIdentity",
    "FlashConnectError",
    "FlashError",
    "FlashRegion",
    "FlashReport",
    "FlashSession",
    "FlashTarget",
    "FlashTimeout",
    "FlashTiming",
    "IdentityMismatch",
    "LoaderEntry",
    "PlannedRegion",
    "RegionFromFlash",
    "RegionResult",
    "Restart",
    "apply_plan",
    "clean_environment",
    "erase_port",
    "flash_port",
    "plan_from",
    "plan_from_index",
    "region",
    "verify_port",
]
