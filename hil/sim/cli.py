"""``hil sim``: serve one virtual ESP32 over RFC2217 until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from hil.sim import netns
from hil.sim.chips import CHIPS
from hil.sim.defects import DefectSet, UnknownDefectError, format_catalogue
from hil.sim.efuse import parse_mac
from hil.sim.station import Station
from hil.sim.timing import TIMINGS, SimTiming

if TYPE_CHECKING:
    from hil.sim.board import VirtualBoard

BOARD_JSON = "board.json"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``sim`` subcommand."""
    parser = subparsers.add_parser(
        "sim",
        help="serve a virtual ESP32 over RFC2217",
        description="Serve one virtual ESP32 on rfc2217://127.0.0.1:PORT. The URL is the first line printed on stdout.",
    )
    parser.add_argument("--chip", choices=sorted(CHIPS), default="esp32", help="chip personality")
    parser.add_argument("--port", type=int, default=0, help="TCP port (0: pick a free one)")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where flash.bin, efuse.json, control.sock and board.json live "
        "(default: a temporary directory removed at exit)",
    )
    parser.add_argument("--mac", default=None, help="base MAC AA:BB:CC:DD:EE:FF (default: derived from the state dir)")
    parser.add_argument(
        "--net-address",
        default="127.0.0.1",
        metavar="IP",
        help="the board's own IP address (a loopback address such as 127.0.0.11 gives each "
        "board its own source address, so captures can tell boards apart)",
    )
    parser.add_argument(
        "--netns",
        action="store_true",
        help="give the board a network of its own: a network namespace behind a veth pair (board "
        "10.77.N.2/30, this host 10.77.N.1/30), so its 127.0.0.1 is itself, as on a real board; board.json "
        "names the host-side interface. Needs root and `ip`; removed at exit (stale ones at the next start)",
    )
    parser.add_argument(
        "--defect",
        action="append",
        default=[],
        metavar="NAME",
        help="enable a catalogued defect (repeatable; see --list-defects)",
    )
    parser.add_argument("--list-defects", action="store_true", help="print the defect catalogue and exit")
    parser.add_argument(
        "--rfc2217-resets",
        choices=("esptool", "lines"),
        default=None,
        help="how DTR/RTS commands reach the chip: as esptool's esp_rfc2217_server does (DTR on = bootloader "
        "reset, RTS off = hard reset; the default) or as levels on the lines (ser2net; the default with "
        "--usb-jtag, whose controller decodes the levels itself)",
    )
    parser.add_argument(
        "--usb-jtag",
        action="store_true",
        help="serve the port as the chip's USB-Serial/JTAG: DTR/RTS decoded as that controller does, and "
        "power-on / EN resets drop the client and refuse connections until it re-enumerates",
    )
    parser.add_argument(
        "--usb-jtag-gap",
        type=float,
        default=None,
        metavar="S",
        help="with --usb-jtag: seconds from the chip running again to its port being back (default 0.3)",
    )
    parser.add_argument(
        "--timing",
        choices=sorted(TIMINGS),
        default="instant",
        help="device time of the boot path: instant (default) or bench (a real ESP32's ROM load, MCUboot "
        "hashing the image at 5 MB/s and IDF start-up: app output comes ~0.7 s after a reset)",
    )
    parser.add_argument("--log-level", default="WARNING", help="logging level for stderr")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``hil sim``."""
    if args.list_defects:
        try:
            print(format_catalogue(), flush=True)
        except BrokenPipeError:  # `hil sim --list-defects | head`: the reader is gone, not an error
            # stays open as the process's stdout, so the flush at exit does not raise again
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return 0
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        defects = DefectSet(args.defect)
        mac = parse_mac(args.mac) if args.mac else None
        ipaddress.ip_address(args.net_address)
        if args.netns:
            netns.check_available()
        if args.usb_jtag_gap is not None and (args.usb_jtag_gap < 0 or not args.usb_jtag):
            raise ValueError(f"--usb-jtag-gap {args.usb_jtag_gap:g}: give a gap >= 0 s, together with --usb-jtag")
    except (UnknownDefectError, ValueError, netns.NetnsError) as exc:
        print(f"hil sim: {exc}", file=sys.stderr)
        return 2
    if args.state_dir is not None:
        return _serve(args, args.state_dir, defects, mac)
    with tempfile.TemporaryDirectory(prefix="hil-sim-") as tmp:
        return _serve(args, Path(tmp), defects, mac)


def _serve(args: argparse.Namespace, state_dir: Path, defects: DefectSet, mac: bytes | None) -> int:
    # Block the stop signals in every thread (set before any thread starts) and take them with
    # sigwait: a Python-level handler could re-enter a lock the main thread holds during shutdown.
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    try:
        with _board_network(args.netns) as station:
            return _serve_blocked(args, state_dir, defects, mac, stop_signals, station)
    except netns.NetnsError as exc:
        print(f"hil sim: {exc}", file=sys.stderr)
        return 2
    finally:
        # a second Ctrl-C/TERM during shutdown is the same request: consume it before unblocking
        while pending := signal.sigpending() & stop_signals:
            signal.sigwait(pending)
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)


@contextmanager
def _board_network(own_namespace: bool) -> Iterator[Station | None]:
    """The board's own network namespace for its lifetime (``--netns``), else None (this host's loopback)."""
    if not own_namespace:
        yield None
        return
    station = netns.create()
    try:
        yield station
    finally:
        netns.delete(station)


def _serve_blocked(
    args: argparse.Namespace,
    state_dir: Path,
    defects: DefectSet,
    mac: bytes | None,
    stop_signals: set[signal.Signals],
    station: Station | None = None,
) -> int:
    # Imported here so `hil --help` stays cheap.
    from hil.sim.board import VirtualBoard
    from hil.sim.boot import boot_chain
    from hil.sim.firmware import run_app
    from hil.sim.power import CONTROL_SOCKET, ControlServer
    from hil.sim.rfc2217_server import Rfc2217Server

    # The composition of a flashed EcoWatt board: the hardware runs the boot chain, which starts the app.
    board = VirtualBoard(
        args.chip,
        state_dir,
        firmware=boot_chain(run_app, TIMINGS[args.timing]),
        mac=mac,
        defects=defects,
        net_address=args.net_address,
        station=station,
    )
    try:
        board.open()
    except ValueError as exc:
        print(f"hil sim: {exc}", file=sys.stderr)
        return 2
    server = control = None
    try:
        server = Rfc2217Server(
            board,
            port=args.port,
            usb_jtag_gap=_usb_jtag_gap(args),
            resets=args.rfc2217_resets or ("lines" if args.usb_jtag else "esptool"),
        ).start()
        board.url = server.url
        control = ControlServer(board, state_dir / CONTROL_SOCKET).start()
        _write_board_json(state_dir, board, control.path, args.usb_jtag, TIMINGS[args.timing])
        print(server.url, flush=True)
        signal.sigwait(stop_signals)
    except OSError as exc:
        print(f"hil sim: {exc}", file=sys.stderr)
        return 1
    finally:
        for closer in (server, control, board):
            if closer is not None:
                closer.close()
        (state_dir / BOARD_JSON).unlink(missing_ok=True)
    return 0


def _usb_jtag_gap(args: argparse.Namespace) -> float | None:
    """The re-enumeration gap with --usb-jtag (None: a UART bridge port)."""
    from hil.sim.usb_jtag import DEFAULT_ENUMERATION_GAP

    if not args.usb_jtag:
        return None
    return DEFAULT_ENUMERATION_GAP if args.usb_jtag_gap is None else args.usb_jtag_gap


def _write_board_json(
    state_dir: Path, board: VirtualBoard, control_path: Path, args_usb_jtag: bool, timing: SimTiming
) -> None:
    info = {
        "url": board.url,
        "control_socket": str(control_path),
        "pid": os.getpid(),
        "chip": board.chip.name,
        "mac": board.status()["mac"],
        "address": board.net_address,
        "interface": board.station.host_interface,  # where the board's traffic can be sniffed
        "namespace": board.station.namespace,
        "gateway": board.station.gateway,  # this host's address on the board's network
        "defects": list(board.defects),
        "usb_jtag": args_usb_jtag,
        "timing": timing.figures(),  # the harness bounds its waits with these (hil.board.timing)
    }
    tmp = state_dir / (BOARD_JSON + ".tmp")
    tmp.write_text(json.dumps(info, indent=2))
    os.replace(tmp, state_dir / BOARD_JSON)
