"""The device's CoAP task (libcoap on a real board): UDP 5683 plain CoAP, UDP 5684 CoAPS.

Both sockets are bound to the board's own address (inside its network namespace when it has one),
so several boards share one host with the protocol's fixed ports. One thread serves both: plain
datagrams go straight to :class:`~hil.sim.firmware.coap_resources.CoapResources`, DTLS datagrams
through :class:`~hil.sim.firmware.dtls_server.DtlsServer` first. ``POST /ota`` is answered before
the OTA check starts (on a task of its own, as the console's ``ota check`` runs it). The service is
a context manager around the console loop: on reset or power-off the thread ends and both ports are
closed before the next boot binds them again.

PSK identity/key and ``coap_mode`` come from NVS (defaults ``iotlab2024`` / ``secretkey123456`` /
``secure-only`` when unprovisioned). The key never reaches the log, except under ``coap-psk-logged``.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
import time

from hil.images.nvs_gen import DEFAULT_COAP_MODE
from hil.sim import netns
from hil.sim.firmware import net
from hil.sim.firmware.coap_resources import CoapReply, CoapResources, plain_mode
from hil.sim.firmware.device import Device
from hil.sim.firmware.dtls_server import MAX_DATAGRAM, TAG, Address, DtlsFaults, DtlsServer
from hil.sim.firmware.identity import DEFAULT_PSK, DEFAULT_PSK_ID
from hil.sim.firmware.ota import ota_check
from hil.sim.runtime import Halted, Reboot
from hil.sim.station import Station

PLAIN_PORT = 5683  # RFC 7252 coap://
SECURE_PORT = 5684  # RFC 7252 coaps://
STOP_TIMEOUT_S = 2 * net.DEFAULT_TIMEOUT_S  # an OTA check in flight may hold a network call that long

_host_log = logging.getLogger("hil.sim")  # the simulator host's log, not the UART


class CoapService:
    """The CoAP/CoAPS servers of one boot. ``start`` opens the ports and the task; ``stop`` (or
    leaving the ``with`` block) ends the task and closes them."""

    def __init__(self, device: Device) -> None:
        self._device = device
        ident = device.identity
        self.psk_id = ident.psk_id if ident else DEFAULT_PSK_ID
        self._psk = ident.psk if ident else DEFAULT_PSK
        self.mode = plain_mode(ident.coap_mode if ident else DEFAULT_COAP_MODE)
        defects = device.rt.defects
        self.resources = CoapResources(self.mode, writes_over_plain="coap-ota-over-plain" in defects)
        self.dtls = DtlsServer(
            self.psk_id, self._psk, device.log, self._secure_request, faults=DtlsFaults.from_names(defects)
        )
        self._plain: socket.socket | None = None
        self._secure: socket.socket | None = None
        self._wake_r: socket.socket | None = None  # the stop signal's socket pair: wakes select()
        self._wake_w: socket.socket | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ota: threading.Thread | None = None

    def status(self) -> str:
        """The ``coap sessions`` console line."""
        return f"coap: sessions={self.dtls.sessions} established={self.dtls.established} mode={self.mode}"

    def start(self) -> CoapService:
        """Bind the ports on the board's address and start the task; logs ``coap.started``. A port
        that cannot be bound is logged (``E coap: cannot bind ...``) and left out."""
        log, station = self._device.log, net.station_of(self._device.rt)
        self._secure = self._bind(station, SECURE_PORT)
        if self.mode != "off":
            self._plain = self._bind(station, PLAIN_PORT)
        if self._secure is None and self._plain is None:
            return self
        self._wake_r, self._wake_w = socket.socketpair()
        plain = f"udp/{PLAIN_PORT} plain ({self.mode})" if self._plain else f"udp/{PLAIN_PORT} closed ({self.mode})"
        secure = f"udp/{SECURE_PORT} DTLS-PSK identity '{self.psk_id}'" if self._secure else f"udp/{SECURE_PORT} closed"
        log.i(TAG, f"CoAP server started on {station.address}: {plain}, {secure}")
        if "coap-psk-logged" in self._device.rt.defects:
            log.i(TAG, f"DTLS PSK configured: identity '{self.psk_id}' key '{self._psk.decode(errors='replace')}'")
        self._device.coap_status = self.status
        self._thread = threading.Thread(target=self._run, name="coap-task", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """End the task, close both ports and forget the sessions (idempotent)."""
        self._stop.set()
        if self._wake_w is not None:
            self._wake_w.send(b"\0")
        for thread in (self._thread, self._ota):
            if thread is not None and thread is not threading.current_thread():
                thread.join(STOP_TIMEOUT_S)
                if thread.is_alive():  # not raised: it would mask the Reboot/Halted that ended the app
                    _host_log.warning("%s still running %.0f s after the app stopped", thread.name, STOP_TIMEOUT_S)
        self._thread = self._ota = None
        for sock in (self._plain, self._secure, self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        self._plain = self._secure = self._wake_r = self._wake_w = None
        self.dtls.close()
        self._device.coap_status = None

    def __enter__(self) -> CoapService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _bind(self, station: Station, port: int) -> socket.socket | None:
        family = socket.AF_INET6 if ":" in station.address else socket.AF_INET
        sock: socket.socket | None = None
        try:
            if station.namespace:
                sock = netns.socket_in(station.namespace, family, socket.SOCK_DGRAM)
            else:
                sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.bind((station.address, port))
        except (OSError, netns.NetnsError) as exc:
            if sock is not None:
                sock.close()
            reason = exc.strerror.lower() if isinstance(exc, OSError) and exc.strerror else str(exc)
            self._device.log.e(TAG, f"cannot bind udp/{port} on {station.address}: {reason}")
            return None
        return sock

    def _run(self) -> None:
        try:
            self._serve_until_stopped()
        except Halted:  # the chip stopped: its UART (our log) raises from now on
            return

    def _serve_until_stopped(self) -> None:
        watched = [s for s in (self._plain, self._secure, self._wake_r) if s is not None]
        while not self._stop.is_set():
            deadline = self.dtls.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                ready, _, _ = select.select(watched, [], [], timeout)
            except OSError:  # a socket closed under us: the app is stopping
                return
            for sock in ready:
                if sock is self._wake_r or self._stop.is_set():
                    continue
                try:
                    data, addr = sock.recvfrom(MAX_DATAGRAM)
                except OSError:
                    continue  # an ICMP error queued on the socket (peer gone): nothing to read
                self._datagram(sock, data, (str(addr[0]), int(addr[1])))
            self.dtls.expire()

    def _datagram(self, sock: socket.socket, data: bytes, addr: Address) -> None:
        if sock is self._secure:
            replies = self.dtls.receive(data, addr)
        else:
            reply = self._serve(data, addr, secure=False)
            replies = [reply] if reply is not None else []
        for datagram in replies:
            try:
                sock.sendto(datagram, addr)
            except OSError as exc:
                self._device.log.w(TAG, f"reply to {addr[0]}:{addr[1]} not sent: {exc.strerror or exc}")

    def _secure_request(self, data: bytes, addr: Address) -> bytes | None:
        return self._serve(data, addr, secure=True)

    def _serve(self, data: bytes, addr: Address, *, secure: bool) -> bytes | None:
        reply: CoapReply = self.resources.handle(data, secure=secure)
        if reply.datagram is None:
            return None
        scheme = "coaps" if secure else "coap"
        self._device.log.i(TAG, f"{reply.method} {reply.path} -> {reply.code} ({scheme} from {addr[0]}:{addr[1]})")
        if reply.ota_requested:
            self._start_ota_check()
        return reply.datagram

    def _start_ota_check(self) -> None:
        if self._ota is not None and self._ota.is_alive():
            self._device.log.w(TAG, "OTA check already running: request ignored")
            return
        self._ota = threading.Thread(target=self._ota_task, name="coap-ota", daemon=True)
        self._ota.start()

    def _ota_task(self) -> None:
        try:
            self._device.rt.wait(0)  # raises Halted if the chip stopped meanwhile
            ota_check(self._device)
        except Halted:
            return
        except Reboot as reboot:  # an installed update: the console task carries out the restart
            self._device.request_restart(reboot.reason)


def cmd_coap_sessions(device: Device, args: list[str]) -> None:
    """Console ``coap sessions``: ``coap: sessions=N established=M mode=...`` (DTLS peers holding
    state, completed handshakes), or ``coap: not running``."""
    device.log.raw(device.coap_status() if device.coap_status is not None else "coap: not running")
