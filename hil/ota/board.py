"""OtaBoard: a board provisioned against an update server, and the steps of an update as its console
shows them (check, download, verification, reboot, swap, self-test, confirm), power cuts at named
points of an update, the OTA timeline and the evidence of one update."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from hil.board.board import Board
from hil.board.timing import TimingProfile
from hil.console import Console
from hil.flashing import FlashRegion
from hil.images.index import Index
from hil.images.layout import layout_for
from hil.images.nvs_gen import DeviceIdentity
from hil.ota.sweep import FIRST_CHUNK, CutPoint
from hil.ota.update_server import UpdateServer
from hil.report.evidence import Evidence

CHUNK_SIZE = 2048  # PROTOCOL.md: the manifest's chunk_size
# ESP-IDF log lines carry the device's millisecond clock: "I (1234) tag: msg"
_DEVICE_MS = re.compile(r"^[EWIDV] \((\d+)\) ")
TIMELINE_EVENTS = (
    "ota.checking",
    "ota.check_failed",
    "ota.available",
    "ota.downgrade_refused",
    "ota.progress",
    "ota.chunk_failed",
    "ota.retry",
    "ota.download_failed",
    "ota.failed",
    "ota.verified",
    "ota.unverified",
    "ota.rebooting",
    "rom.reset",
    "boot.swap",
    "boot.swapping",
    "boot.refused",
    "boot.verified",
    "boot.validated",
    "boot.version",
    "ota.selftest_passed",
    "ota.selftest_failed",
    "ota.confirmed",
    "ota.unconfirmed",
    "ota.reverted",
    "ota.status_failed",
)


@dataclass(frozen=True)
class TimelineEntry:
    """One OTA event as seen on the console: device clock (ms, if the line has one) and host clock."""

    event: str
    device_ms: int | None
    host_s: float
    text: str
    fields: dict[str, str]


@dataclass
class OtaBoard:
    """A board provisioned against an update server, and the steps of an update on its console."""

    board: Board
    server: UpdateServer
    device: DeviceIdentity
    firmware: Index
    evidence: Evidence
    running: str
    start: int = 0
    _t0: float = field(default_factory=time.time)

    @property
    def console(self) -> Console:
        """The board's console."""
        return self.board.console

    @property
    def timing(self) -> TimingProfile:
        """The board's timing profile: every wait of an update is bounded by it."""
        return self.board.timing

    @property
    def _step(self) -> float:
        return self.timing.step()

    def download_bound(self, image: str = "app-v2") -> float:
        """How long downloading ``image`` may take on this board (its timing profile)."""
        return self.timing.download(self.firmware.get(image).size, CHUNK_SIZE)

    def _boot(self, image: str = "app-v2", swap: bool = False) -> float:
        slot = layout_for(self.firmware.chip).slot_size
        return self.timing.boot(self.firmware.get(image).size) + (self.timing.swap(slot) if swap else 0.0)

    def version_of(self, image: str) -> str:
        """The version of firmware image ``image`` (``app-v2`` -> ``2.0.0``)."""
        return str(self.firmware.get(image).version)

    def check(self) -> int:
        """Send ``ota check``; returns the console mark before it. The reboot of an installed update
        is announced, so it is not taken for a crash."""
        mark = self.console.mark()
        self.console.expect_reset(self.download_bound() + self._boot(swap=True))
        self.console.send("ota check")
        self.console.expect_event("ota.checking", self._step, since=mark, unless=["ota.check_failed"])
        return mark

    def expect_downloaded(self, version: str) -> None:
        """Offer of ``version`` seen, download complete, image verified (hash and signature), reboot."""
        c = self.console
        c.expect_event("ota.available", self._step, version=version, unless=["ota.failed", "ota.none"])
        c.expect_event("ota.progress", self.download_bound(), percent="100", unless=["ota.failed"])
        c.expect_event("ota.verified", self._step, unless=["ota.failed", "ota.unverified", "ota.rebooting"])
        c.expect_event("ota.rebooting", self._step, version=version, unless=["ota.failed"])

    def expect_boot(self, version: str, swap_type: str | None = None, *, after_power_on: bool = False) -> None:
        """The next boot: MCUboot's swap decision (``swap_type`` if given), the primary slot
        verified (hash and signature) and loaded, then the app reports ``version``. MCUboot prints
        no verification; ``boot.verified`` is the profile's inference from the load (no refusal of
        the primary slot in this boot), so it is the same line as ``boot.validated``. ``after_power_on``:
        on a board whose console is its USB-Serial/JTAG (re-enumerating at power-on) only the app's
        version can be seen."""
        c = self.console
        boot = self._boot(swap=swap_type is not None)  # a swap copies the slot before the load
        if after_power_on and not self.board.sees_power_on_boot:  # its port was away while MCUboot printed
            self._expect_version(c.expect_event("boot.version", boot, allow_reboot=True), version)
            return
        c.expect_event("boot.mcuboot", self._step, allow_reboot=True)
        if swap_type is not None:
            c.expect_event("boot.swap", self._step, swap_type=swap_type, unless=["boot.validated"])
        c.expect_event("boot.verified", boot, slot="0", unless=["boot.no_image"])
        self._expect_version(c.expect_event("boot.version", boot), version)

    def _expect_version(self, match: re.Match[str], version: str) -> None:
        assert match["version"] == version, (
            f"board {self.board.name} booted firmware {match['version']}, expected {version}"
        )

    def expect_confirmed(self, version: str) -> None:
        """The new image passed its self-test and then confirmed itself."""
        c = self.console
        c.expect_event("ota.selftest_passed", self._step, unless=["ota.selftest_failed", "ota.confirmed"])
        c.expect_event("ota.confirmed", self._step, version=version)
        self.running = version

    def update(self, image: str = "app-v2") -> None:
        """Run a whole update to ``image`` and check every phase of it on the console."""
        version = self.version_of(image)
        self.check()
        self.expect_downloaded(version)
        self.expect_boot(version, swap_type="test")
        self.expect_confirmed(version)
        assert self.running_version() == version
        self.assert_reported("success")

    def expect_failed(self, code: str) -> dict[str, str]:
        """The update ended in ``ota.failed`` with ``code`` (and no reboot), the device stays on the
        running version, and the server received a ``failed`` report with that code."""
        match = self.console.expect_event("ota.failed", self.download_bound(), unless=["ota.rebooting"])
        assert match["code"] == code, f"update failed with {match['code']} ({match['reason']}), expected {code}"
        assert self.running_version() == self.running, "the device left the version it was running"
        self.assert_reported("failed", code)
        return match.groupdict()

    def assert_reported(self, status: str, code: str | None = None) -> None:
        """The device's last status report is ``status`` (with ``error_code`` ``code``)."""
        self.running_version()  # the console answers only once the report in flight went out
        reports = self.server.statuses(self.device.device_id)
        lines = "\n".join(self.server.status_lines(self.device.device_id))
        assert reports, f"the server received no OTA status report from {self.device.device_id}"
        last = reports[-1]
        assert (last["status"], last["error_code"]) == (status, code), (
            f"last status report is {last['status']} {last['error_code']}, expected {status} {code}:\n{lines}"
        )

    def running_version(self) -> str:
        """The version the app reports on the ``status`` console command."""
        mark = self.console.mark()
        self.console.send("status")
        return self.console.expect_event("status", self._step, since=mark)["version"]

    def assert_slot_erased_and_boots(self, version: str) -> None:
        """The secondary slot holds nothing (flash MD5 equals an erased slot's, read over the ROM
        loader), and the board then boots ``version`` again."""
        layout = layout_for(self.firmware.chip)
        report = self.board.flash(
            [FlashRegion(layout.secondary_slot, b"\xff" * layout.slot_size, "secondary slot (must be erased)")]
        )
        (region,) = report.regions
        assert region.action == "skipped", (
            f"board {self.board.name}: the secondary slot at {layout.secondary_slot:#x} still holds "
            f"{region.bytes_written} bytes of a failed update (it must be erased on failure)"
        )
        self.expect_boot(version)

    def cut_update(self, point: CutPoint, image: str = "app-v2") -> str:
        """Start an update to ``image`` with power cut at ``point``; wait until the board has booted
        again after the cut and settled. Returns the version it runs then."""
        cut = self.board.arm_power_cut(point.checkpoint, restore=True, **point.fields)
        mark = self.check()
        c = self.console
        c.expect_event(
            "ota.available",
            self._step,
            version=self.version_of(image),
            unless=["ota.none", "ota.check_failed", "ota.failed"],
        )
        cut.wait(self.download_bound(image) + self._boot(image, swap=True))  # cuts in a swap come after the download
        after_cut = c.mark()  # a USB-JTAG port is off the bus now: nothing of the next boot is read yet
        boot = self._boot(image, swap=True)  # the cut may leave a swap to finish
        if self.board.sees_power_on_boot:  # else the port was away while the ROM and MCUboot printed
            c.expect_event("rom.reset", self._step, since=mark, cause="POWERON_RESET")
            c.expect_event("boot.verified", boot, unless=["boot.no_image"], allow_reboot=True)
            version = c.expect_event("boot.version", boot, allow_reboot=True)["version"]
        else:
            version = c.expect_event("boot.version", boot, since=after_cut, allow_reboot=True)["version"]
        if point.settles_on == "new" and point.confirm_after:  # the new image proves itself and confirms
            c.expect_event("ota.confirmed", self._step, unless=["ota.selftest_failed"])
        self.running = version
        return version

    def expect_update_restarts(self, image: str = "app-v2") -> None:
        """The update can be taken up again: the next check is offered ``image`` and the download
        writes a chunk into the secondary slot. Power is cut right there (:data:`FIRST_CHUNK`), so
        the board settles back on the version it runs, as after any cut in a download, instead of
        paying for a whole second update."""
        running = self.running
        version = self.cut_update(FIRST_CHUNK, image)
        assert version == running, f"after {FIRST_CHUNK.id} of the new attempt the board runs {version}, not {running}"

    def timeline(self, since: int | None = None) -> list[TimelineEntry]:
        """The OTA events on the console since mark ``since`` (default: this test's start)."""
        lines = self.console.lines(self.start if since is None else since)
        out = []
        # inferred events too (boot.verified), so the first name in TIMELINE_EVENTS order wins a line
        for at, name, match in self.console.profile.scan([line.text for line in lines], TIMELINE_EVENTS):
            ms = _DEVICE_MS.match(lines[at].text)
            out.append(
                TimelineEntry(name, int(ms[1]) if ms else None, lines[at].wall, lines[at].text, match.groupdict())
            )
        return out

    def attach_evidence(self) -> None:
        """Timeline, console excerpt and status reports of this test into the report."""
        entries = self.timeline()
        rows = [
            f"{e.host_s - self._t0:8.3f} s  {'-' if e.device_ms is None else e.device_ms:>8} ms  {e.event:<22} {e.text}"
            for e in entries
        ]
        self.evidence.attach_text("OTA timeline (host s since start, device ms, event, line)", "\n".join(rows))
        excerpt = [line.text for line in self.console.lines(self.start)]
        self.evidence.attach_text("console excerpt (OTA)", "\n".join(excerpt), tail_lines=60)
        self.evidence.attach_text(
            "OTA status reports", "\n".join(self.server.status_lines(self.device.device_id)) or "(none)"
        )
