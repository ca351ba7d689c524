"""Per-test packet capture of one board's traffic with scapy, ready before the test acts and drained
completely when it stops.

Facts this relies on (DESIGN.md "Capture"): on ``lo`` every packet is seen twice unless the filter
starts with ``inbound``; ``AsyncSniffer`` is only listening once ``started_callback`` fired; its
``stop()`` does not drain, so a sentinel datagram matching the filter is sent and the sniffer ends
itself when it sees it (everything queued before it has then been written). The capture socket is
opened here, not inside scapy's thread, so a missing privilege raises at ``start()``
(:class:`CaptureUnavailable`) instead of leaving a silently empty pcap; the kernel's own drop counter
(``PACKET_STATISTICS``) is read at stop so loss is reported, never hidden.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import scapy.arch
import scapy.layers.l2  # noqa: F401  -- maps ARPHRD_LOOPBACK to Ether for lo frames
from scapy.interfaces import resolve_iface
from scapy.packet import Packet
from scapy.sendrecv import AsyncSniffer
from scapy.supersocket import SuperSocket

from hil.net.pcap_file import PcapBusy, PcapFile

log = logging.getLogger(__name__)
SOL_PACKET = 263
SO_RCVBUFFORCE = 33  # Linux; not exported by the socket module
PACKET_STATISTICS = 6
SENTINEL_PORT = 9  # discard: a real board ignores the sentinel datagram
MAX_DRAIN_S = 120.0  # bound on draining a backlog that is still making progress
DEFAULT_RCVBUF = 32 * 1024 * 1024  # a burst of thousands of frames must fit while Python dissects


class CaptureError(RuntimeError):
    """The capture could not be set up or did not drain (a configuration problem or a bug)."""


class CaptureUnavailable(CaptureError):
    """No privilege to sniff (CAP_NET_RAW): use the recording relay instead (see ``open_capture``)."""


@dataclass(frozen=True)
class CaptureStats:
    """What a stopped capture saw. ``kernel_drops`` > 0 means the pcap misses packets."""

    path: Path
    packets_written: int
    kernel_packets: int
    kernel_drops: int
    start_latency_s: float
    mode: str = "sniffer"

    def describe(self) -> str:
        """One line for the report."""
        loss = f", {self.kernel_drops} DROPPED by the kernel" if self.kernel_drops else ""
        return f"{self.mode} capture {self.path.name}: {self.packets_written} packets{loss}"


def capture_filter(iface: str, host: str, extra: str | None = None) -> str:
    """The BPF filter for one board: its address, ``inbound`` on loopback (else each frame is seen twice)."""
    parts = (["inbound"] if iface == "lo" else []) + [f"host {host}"] + ([f"({extra})"] if extra else [])
    return " and ".join(parts)


def capture_path(root: str | Path, run: str, test: str, kind: str = "") -> Path:
    """``<root>/runs/<run>/<test>.pcap`` with the pytest node id made filesystem-safe; a second
    capture of the same test names its ``kind`` (``<test>.<kind>.pcap``): one file, one writer."""
    safe = re.sub(r"[^A-Za-z0-9_.\-\[\]]+", "_", test).strip("_") or "test"
    suffix = f".{re.sub(r'[^A-Za-z0-9_-]+', '_', kind)}" if kind else ""
    return Path(root) / "runs" / run / f"{safe[:180]}{suffix}.pcap"


class Sniffer:
    """Capture of one board's traffic on one interface into a pcap file.

    ``start()`` returns once the kernel filter is attached and the sniffer thread is in its receive
    loop; ``stop()`` drains with a sentinel and returns :class:`CaptureStats`. Use as a context manager.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        host: str,
        iface: str = "lo",
        extra_filter: str | None = None,
        ready_timeout: float = 5.0,
        drain_timeout: float = 5.0,
        rcvbuf: int = DEFAULT_RCVBUF,
    ) -> None:
        self.path = Path(path)
        self.host = host
        self.iface = iface
        self.filter = capture_filter(iface, host, extra_filter)
        self.ready_timeout = ready_timeout
        self.drain_timeout = drain_timeout
        self.rcvbuf = rcvbuf
        self._token = b""
        self._ready = threading.Event()
        self._drained = threading.Event()
        self._sync_token = b""
        self._synced: dict[bytes, threading.Event] = {}
        self._sync_lock = threading.Lock()
        self._socket: SuperSocket | None = None
        self._pcap: PcapFile | None = None
        self._sniffer: AsyncSniffer | None = None
        self._written = 0
        self._latency = 0.0
        self._stats: CaptureStats | None = None

    @property
    def running(self) -> bool:
        """Started and not yet stopped."""
        return self._sniffer is not None and self._stats is None

    @property
    def packets_written(self) -> int:
        """Packets written to the pcap so far."""
        return self._written

    def start(self) -> Sniffer:
        """Open the capture socket, start the sniffer thread and wait until it listens.

        Raises :class:`CaptureUnavailable` without CAP_NET_RAW, :class:`CaptureError` for a bad
        interface or a sniffer that does not come up within ``ready_timeout``.
        """
        if self._sniffer is not None:
            raise CaptureError(f"capture {self.path} already started")
        t0 = time.monotonic()
        self._token = b"hil-capture-sentinel:" + os.urandom(8).hex().encode()
        self._sync_token = b"hil-capture-sync:" + os.urandom(8).hex().encode() + b":"
        self._socket = self._open_socket()
        try:  # a valid (empty) pcap exists even if nothing matches
            self._pcap = PcapFile(self.path, owner=f"the sniffer for board {self.host} on {self.iface}").open()
        except PcapBusy as exc:
            self._abort()
            raise CaptureError(str(exc)) from exc
        self._sniffer = AsyncSniffer(
            opened_socket=self._socket,
            prn=self._on_packet,
            store=False,
            stop_filter=self._is_sentinel,
            started_callback=self._ready.set,
        )
        self._sniffer.start()
        if not self._ready.wait(self.ready_timeout):
            error = self._sniffer.exception
            self._abort()
            raise CaptureError(
                f"sniffer on {self.iface} for board {self.host} did not start within "
                f"{self.ready_timeout}s ({error or 'no error reported'})"
            )
        self._latency = time.monotonic() - t0
        return self

    def stop(self) -> CaptureStats:
        """Drain (sentinel), stop, close the pcap and return the stats; idempotent.

        Raises :class:`CaptureError` if the sentinel never arrived: the pcap may then be incomplete.
        """
        if self._stats is not None:
            return self._stats
        if self._sniffer is None:
            raise CaptureError(f"capture {self.path} was never started")
        self._send_sentinel()
        drained = self._wait_drained()
        if self._sniffer.running:
            self._sniffer.stop(join=False)
        self._sniffer.join(self.drain_timeout)
        kernel_packets, drops = self._kernel_stats()
        self._close()
        self._stats = CaptureStats(self.path, self._written, kernel_packets, drops, self._latency)
        if not drained:
            raise CaptureError(
                f"capture {self.path} for board {self.host} on {self.iface} did not see its "
                f"drain sentinel (no progress for {self.drain_timeout}s, {drops} packets dropped "
                f"by the kernel); the pcap may miss packets"
            )
        if drops:
            log.warning("%s", self._stats.describe())
        return self._stats

    def __enter__(self) -> Sniffer:
        return self.start()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self._sniffer is None or self._stats is not None:
            return
        if exc_type is None:
            self.stop()
            return
        try:  # the test already failed: still close everything, but do not mask its exception
            self.stop()
        except CaptureError as drain_error:
            log.warning("%s", drain_error)

    # -- internals -------------------------------------------------------------------------------

    def _open_socket(self) -> SuperSocket:
        try:
            iface = resolve_iface(self.iface)
            sock = iface.l2listen()(iface=iface, filter=self.filter)
        except PermissionError as exc:
            raise CaptureUnavailable(
                f"no privilege to sniff {self.iface} for board {self.host} ({exc}); run as "
                f"root or grant CAP_NET_RAW (setcap cap_net_raw+ep on the python "
                f"binary), or use the recording relay fallback"
            ) from exc
        except (OSError, ValueError) as exc:  # ValueError: scapy does not know the interface
            raise CaptureError(
                f"cannot sniff interface {self.iface!r} for board {self.host}: {exc}; check the "
                f"board's `capture_iface` in the inventory"
            ) from exc
        try:
            sock.ins.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, self.rcvbuf)
        except PermissionError:  # CAP_NET_ADMIN missing: the capped SO_RCVBUF is the best we get
            sock.ins.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        self._kernel_stats_of(sock)  # reading resets the counters: start from zero
        return sock

    def _wait_drained(self) -> bool:
        # A backlog (a burst the dissector is still working through) may take longer than
        # drain_timeout: keep waiting while packets are still being written, up to MAX_DRAIN_S.
        deadline = time.monotonic() + MAX_DRAIN_S
        last = -1
        while self._written != last and time.monotonic() < deadline:
            last = self._written
            if self._drained.wait(self.drain_timeout):
                return True
            self._send_sentinel()  # the first may have been dropped by a full socket buffer
        return False

    def sync(self, timeout: float = 5.0) -> None:
        """Wait until every packet the kernel saw before this call is in the pcap (the capture goes
        on): a test can read the file mid-run. Raises :class:`CaptureError` on timeout."""
        if not self.running:
            return  # stopped: the file is complete
        token = self._sync_token + os.urandom(4).hex().encode()
        seen = threading.Event()
        with self._sync_lock:
            self._synced[token] = seen
        try:
            self._send_token(token)
            if not seen.wait(timeout):
                raise CaptureError(
                    f"capture {self.path} for board {self.host} did not catch up within "
                    f"{timeout}s ({self._kernel_stats()[1]} packets dropped by the kernel)"
                )
        finally:
            with self._sync_lock:
                self._synced.pop(token, None)

    def _on_packet(self, pkt: Packet) -> None:
        raw = bytes(pkt)
        if self._sync_token in raw:
            with self._sync_lock:
                for token, event in self._synced.items():
                    if token in raw:
                        event.set()
            return
        if self._is_sentinel(pkt):
            self._drained.set()
            return
        assert self._pcap is not None
        self._pcap.write((pkt,))
        self._written += 1

    def _is_sentinel(self, pkt: Packet) -> bool:
        return self._token in bytes(pkt)

    def _send_sentinel(self) -> None:
        self._send_token(self._token)

    def _send_token(self, token: bytes) -> None:
        # On loopback the sentinel goes from the board's own address to itself: it matches the filter,
        # nobody answers it, and no ICMP unreachable follows. Elsewhere it goes to the board's discard port.
        family = socket.AF_INET6 if ipaddress.ip_address(self.host).version == 6 else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            if ipaddress.ip_address(self.host).is_loopback:
                sock.bind((self.host, 0))
                sock.sendto(token, sock.getsockname())
            else:
                sock.sendto(token, (self.host, SENTINEL_PORT))

    def _kernel_stats(self) -> tuple[int, int]:
        return self._kernel_stats_of(self._socket) if self._socket is not None else (0, 0)

    @staticmethod
    def _kernel_stats_of(sock: SuperSocket) -> tuple[int, int]:
        raw = sock.ins.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
        return struct.unpack("II", raw)

    def _abort(self) -> None:
        if self._sniffer is not None and self._sniffer.running:
            self._sniffer.stop(join=True)
        self._close()
        self._sniffer = None

    def _close(self) -> None:
        if self._pcap is not None:
            self._pcap.close()
            self._pcap = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
