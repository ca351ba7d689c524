"""Parsed harness settings, kept in ``config.stash`` (one frozen object per session)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from hil.board.options import OPTIONS as BOARD_OPTIONS
from hil.coap.options import OPTIONS as COAP_OPTIONS
from hil.invariants.options import OPTIONS as INVARIANT_OPTIONS
from hil.net.options import CAPTURE_MODES
from hil.net.options import OPTIONS as NET_OPTIONS
from hil.options import OptionSpec, read_option
from hil.server.options import OPTIONS as SERVER_OPTIONS
from hil.tiers import OPTIONS as TIER_OPTIONS
from hil.wire.options import OPTIONS as WIRE_OPTIONS

# Board options (inventory, locks, profile, flashing) belong to hil.board; these are the ones of
# virtual boards and of where firmware and logs live.
VIRTUAL_BOARD_OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(
        "virtual",
        "use virtual boards even if real boards are configured or detected",
        default=False,
        action="store_true",
    ),
    OptionSpec(
        "require-hardware",
        "refuse to start virtual boards: fail at session start unless a real board is configured "
        "(--hil-port/--hil-boards) or detected on USB",
        default=False,
        action="store_true",
    ),
    OptionSpec(
        "sim-defect",
        "start virtual boards with this defect (see `hil sim --list-defects`); repeatable",
        action="append",
        metavar="NAME",
    ),
    OptionSpec("sim-chip", "chip of virtual boards: esp32 or esp32c6", default="esp32", metavar="CHIP"),
    OptionSpec(
        "sim-usb-jtag",
        "serve virtual boards' ports as their USB-Serial/JTAG: the port drops and re-enumerates on "
        "power-on and EN resets (as on a bench), DTR/RTS decoded as that controller does",
        default=False,
        action="store_true",
    ),
    OptionSpec(
        "sim-netns",
        "run each virtual board's network in its own network namespace behind a veth pair (its "
        "127.0.0.1 is itself, as on a real board; captures sniff the host-side veth); needs root and `ip`",
        default=False,
        action="store_true",
    ),
    OptionSpec(
        "sim-timing",
        "device time of virtual boards' boot path: instant, or bench (a real ESP32's ROM load, MCUboot "
        "hashing and IDF start-up)",
        default="instant",
        metavar="NAME",
    ),
    OptionSpec(
        "sim-bench",
        "bench-like virtual boards: --hil-sim-netns, --hil-sim-usb-jtag and --hil-sim-timing=bench together "
        "(real MCUboot lines are always printed)",
        default=False,
        action="store_true",
    ),
)
FIRMWARE_OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(
        "firmware-dir",
        "directory holding index.json and the images (built when missing)",
        default="firmware_builds",
        metavar="DIR",
    ),
    OptionSpec("logs-dir", "where per-test console logs go", default="reports/logs", metavar="DIR"),
)
ALL_OPTIONS: tuple[OptionSpec, ...] = (
    BOARD_OPTIONS
    + VIRTUAL_BOARD_OPTIONS
    + FIRMWARE_OPTIONS
    + SERVER_OPTIONS
    + NET_OPTIONS
    + COAP_OPTIONS
    + WIRE_OPTIONS
    + INVARIANT_OPTIONS
    + TIER_OPTIONS
)


@dataclass(frozen=True)
class HilSettings:
    """Everything the fixtures need to know from the command line and pytest.ini."""

    ports: tuple[str, ...]
    boards_file: Path | None
    virtual: bool
    sim_defects: tuple[str, ...]
    sim_chip: str
    lock_dir: Path | None
    lock_timeout: float
    flash_baud: int | None  # None: each board's own (BoardSpec.flash_baud)
    reflash: bool
    firmware_dir: Path
    firmware_profile: str
    logs_dir: Path
    keys_dir: Path
    server_url: str | None = None
    server_ca: Path | None = None
    server_defects: tuple[str, ...] = ()
    capture_mode: str = "auto"
    power_cut_sweep: str = "sample"
    power_cut_samples: int = 6
    require_hardware: bool = False
    server_host: str | None = None
    sim_netns: bool = False
    sim_usb_jtag: bool = False
    sim_timing: str = "instant"
    coap_host: str | None = None  # None: the board's network_address
    coap_port: int = 5683
    coaps_port: int = 5684
    coap_psk_id_env: str = "HIL_COAP_PSK_ID"  # names of environment variables, never the PSK itself
    coap_psk_env: str = "HIL_COAP_PSK"
    wire_profile: str = "ecowatt-api"  # a shipped profile name or a path (hil.wire.profile)
    device_trigger: str = "auto"  # hil.board.trigger.TRIGGERS
    invariants: bool = True  # check hil.invariants after each scenario
    slow: bool = False  # run the slow tier (hil.tiers)
    no_flood: bool = False

    @property
    def defects(self) -> tuple[str, ...]:
        """Every injected defect: the virtual boards' and the built-in server's."""
        return self.sim_defects + self.server_defects

    @classmethod
    def from_config(cls, config: pytest.Config) -> HilSettings:
        opt = {spec.dest: read_option(config, spec) for spec in ALL_OPTIONS}
        root = config.rootpath

        def path(value: str | None) -> Path | None:
            return None if value is None else (root / value if not Path(value).is_absolute() else Path(value))

        def required_path(dest: str) -> Path:
            value = path(opt[dest])
            if value is None:  # the option declares a default: None means its OptionSpec lost it
                raise pytest.UsageError(f"--{dest.replace('_', '-')} has no value and no default")
            return value

        return cls(
            ports=tuple(opt["hil_port"] or ()),
            boards_file=path(opt["hil_boards"]),
            virtual=bool(opt["hil_virtual"]),
            sim_defects=tuple(opt["hil_sim_defect"] or ()),
            sim_chip=opt["hil_sim_chip"],
            lock_dir=path(opt["hil_lock_dir"]),
            lock_timeout=float(opt["hil_lock_timeout"]),
            flash_baud=None if opt["hil_flash_baud"] is None else int(opt["hil_flash_baud"]),
            reflash=bool(opt["hil_reflash"]),
            firmware_dir=required_path("hil_firmware_dir"),
            firmware_profile=opt["hil_firmware_profile"],
            logs_dir=required_path("hil_logs_dir"),
            keys_dir=root / "firmware_builds" / "keys",  # the TEST ONLY keys every build trusts
            server_url=opt["hil_server_url"],
            server_ca=path(opt["hil_server_ca"]),
            server_defects=tuple(opt["hil_server_defect"] or ()),
            capture_mode=_choice(opt, "hil_capture_mode", CAPTURE_MODES),
            power_cut_sweep=_choice(opt, "hil_power_cut_sweep", ("sample", "all")),
            power_cut_samples=int(opt["hil_power_cut_samples"]),
            require_hardware=bool(opt["hil_require_hardware"]),
            server_host=opt["hil_server_host"],
            sim_netns=bool(opt["hil_sim_netns"] or opt["hil_sim_bench"]),
            sim_usb_jtag=bool(opt["hil_sim_usb_jtag"] or opt["hil_sim_bench"]),
            sim_timing="bench" if opt["hil_sim_bench"] else _choice(opt, "hil_sim_timing", ("instant", "bench")),
            coap_host=opt["hil_coap_host"],
            coap_port=int(opt["hil_coap_port"]),
            coaps_port=int(opt["hil_coaps_port"]),
            coap_psk_id_env=opt["hil_coap_psk_id_env"],
            coap_psk_env=opt["hil_coap_psk_env"],
            wire_profile=opt["hil_wire_profile"],
            device_trigger=_choice(opt, "hil_device_trigger", ("auto", "console", "timer")),
            invariants=not opt["hil_no_invariants"],
            slow=bool(opt["hil_slow"]),
            no_flood=bool(opt["hil_no_flood"]),
        )


def _choice(opt: dict, dest: str, choices: tuple[str, ...]) -> str:
    value = opt[dest]
    if value not in choices:
        flag = "--" + dest.replace("_", "-")
        raise pytest.UsageError(f"{flag} {value!r}: expected one of {', '.join(choices)}")
    return value


SETTINGS_KEY = pytest.StashKey[HilSettings]()


def settings(config: pytest.Config) -> HilSettings:
    """The session's settings (parsed in ``pytest_configure``)."""
    return config.stash[SETTINGS_KEY]
