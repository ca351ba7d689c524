"""Recording relay: the capture fallback when the harness may not sniff.

The board is pointed at the relay instead of the server; the relay forwards every byte both ways and
writes what crossed it to a pcap as the conversation board <-> server (synthesised Ethernet/IP/TCP
frames with real sequence numbers, or UDP datagrams), so flow analysis, replay and the report work
on it exactly as on a sniffed capture. What it cannot show is traffic that bypasses it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from hil.net.capture import CaptureError, CaptureStats
from hil.net.namespace import run_in_namespace
from hil.net.pcap_file import PcapFile
from hil.net.synth import DEFAULT_MSS, TcpConversation, udp_frame
from hil.net.workers import WorkerGroup, bound_address, open_listener

Endpoint = tuple[str, int]
_CHUNK = 65536


class RecordingRelay:
    """A TCP or UDP relay from a local ``listen`` address to ``upstream`` that records to a pcap.

    ``start()`` binds and returns at once (the socket is listening, so the relay is ready);
    :attr:`address` is where the board must connect. ``stop()`` closes every connection, joins every
    thread and returns :class:`~hil.net.capture.CaptureStats` (``mode="relay"``).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        upstream: Endpoint,
        listen: Endpoint = ("127.0.0.1", 0),
        upstream_source: str | None = None,
        upstream_namespace: str | None = None,
        proto: Literal["tcp", "udp"] = "tcp",
        mss: int = DEFAULT_MSS,
        max_connections: int = 64,
        connect_timeout: float = 5.0,
        join_timeout: float = 5.0,
        drain_timeout: float = 1.0,
    ) -> None:
        if proto not in ("tcp", "udp"):
            raise ValueError(f"relay protocol must be tcp or udp, not {proto!r}")
        self.path = Path(path)
        self.upstream = upstream
        self.listen = listen
        # connect upstream from this address (the board's own, when this host has it): the server then
        # sees the board's peer address, as without the relay, not the one an attacker on this host has
        self.upstream_source = upstream_source
        self.upstream_namespace = upstream_namespace  # ... from the board's own network namespace
        self.proto = proto
        self.mss = mss
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout
        self.join_timeout = join_timeout
        self.drain_timeout = drain_timeout
        self._active = 0
        self._idle = threading.Condition()
        self._sink: PcapFile | None = None
        self._server: socket.socket | None = None
        self._workers = WorkerGroup("relay")
        self._latency = 0.0
        self._stats: CaptureStats | None = None
        self.errors: list[str] = []  # upstream refusals and resets, for the report

    @property
    def address(self) -> Endpoint:
        """The bound listening address (point the board here)."""
        return bound_address(self._server, "recording relay")

    def start(self) -> RecordingRelay:
        """Bind the listening socket, open the pcap and start the relay thread."""
        t0 = time.monotonic()
        try:
            server = open_listener(self.listen, udp=self.proto == "udp", backlog=self.max_connections)
        except OSError as exc:
            raise CaptureError(
                f"recording relay cannot listen on {self.listen[0]}:{self.listen[1]} "
                f"({exc}); pick a free port or address"
            ) from exc
        self._server = server
        self._workers.open()
        self._sink = PcapFile(self.path, owner=f"the recording relay to {self.upstream[0]}:{self.upstream[1]}").open()
        target = self._accept_loop if self.proto == "tcp" else self._udp_loop
        self._workers.spawn(target, name=f"{self.proto}-{self.address[1]}")
        self._latency = time.monotonic() - t0
        return self

    def stop(self) -> CaptureStats:
        """Stop relaying, close everything, join threads; idempotent."""
        if self._stats is not None:
            return self._stats
        if self._sink is None:
            raise CaptureError(f"relay {self.path} was never started")
        self.wait_idle(self.drain_timeout)  # let connections in flight finish (their FINs get recorded)
        alive = self._workers.stop(self.join_timeout)
        if self._server is not None:
            self._server.close()
        self._sink.close()
        self._stats = CaptureStats(self.path, self._sink.count, self._sink.count, 0, self._latency, mode="relay")
        if alive:
            raise CaptureError(f"relay threads {alive} did not stop within {self.join_timeout}s")
        return self._stats

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no TCP connection is open through the relay; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._active == 0, timeout)

    def __enter__(self) -> RecordingRelay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self._sink is not None:
            self.stop()

    def _source_address(self) -> tuple[str, int] | None:
        return (self.upstream_source, 0) if self.upstream_source else None

    def _on_board_side(self, make: Callable[[], socket.socket]) -> socket.socket:
        """A socket made in the board's network namespace, if it has one (else here)."""
        return run_in_namespace(self.upstream_namespace, make) if self.upstream_namespace else make()

    # -- TCP -------------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._server is not None
        while not self._workers.stopping.is_set():
            if not self._workers.wait_readable([self._server]) or self._workers.stopping.is_set():
                continue
            client, peer = self._server.accept()
            with self._idle:
                self._active += 1
            self._workers.spawn(self._serve_connection, client, peer, name=f"conn-{peer[1]}")

    def _serve_connection(self, client: socket.socket, peer: Endpoint) -> None:
        try:
            self._relay_connection(client, peer)
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def _relay_connection(self, client: socket.socket, peer: Endpoint) -> None:
        assert self._sink is not None
        try:
            upstream = self._on_board_side(
                lambda: socket.create_connection(self.upstream, self.connect_timeout, self._source_address())
            )
        except OSError as exc:
            self.errors.append(f"{peer[0]}:{peer[1]} -> upstream {self.upstream}: {exc}")
            client.close()
            return
        upstream.settimeout(None)
        conv = TcpConversation(client=peer[:2], server=self.upstream, mss=self.mss)
        self._sink.write(conv.handshake())
        with client, upstream:
            self._pump(conv, client, upstream)

    def _pump(self, conv: TcpConversation, client: socket.socket, upstream: socket.socket) -> None:
        assert self._sink is not None
        route = {client: (upstream, "c2s"), upstream: (client, "s2c")}
        open_sides = [client, upstream]
        while open_sides and not self._workers.stopping.is_set():
            for src in self._workers.wait_readable(open_sides):
                dst, direction = route[src]
                try:
                    data = src.recv(_CHUNK)
                    if data:
                        dst.sendall(data)
                except OSError as exc:  # reset by either peer: record it and end the connection
                    self._sink.write(conv.reset(direction))
                    self.errors.append(f"{conv.client} {direction}: {exc}")
                    return
                if data:
                    self._sink.write(conv.data(direction, data))
                    continue
                self._sink.write(conv.close(direction))
                open_sides.remove(src)
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass  # the other side is already gone; its own EOF/RST ends the loop

    # -- UDP -------------------------------------------------------------------------------------

    def _udp_loop(self) -> None:
        assert self._server is not None and self._sink is not None
        upstreams: dict[Endpoint, socket.socket] = {}
        peers: dict[socket.socket, Endpoint] = {}
        try:
            while not self._workers.stopping.is_set():
                for sock in self._workers.wait_readable([self._server, *peers]):
                    if sock is self._server:
                        data, peer = sock.recvfrom(_CHUNK)
                        up = upstreams.get(peer)
                        if up is None:
                            if len(upstreams) >= self.max_connections:
                                self.errors.append(f"UDP peer {peer} dropped: {self.max_connections} peers already")
                                continue
                            up = self._on_board_side(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                            if self.upstream_source:
                                up.bind((self.upstream_source, 0))
                            up.connect(self.upstream)
                            upstreams[peer], peers[up] = up, peer
                        self._sink.write([udp_frame(peer, self.upstream, data)])
                        up.send(data)
                    else:
                        try:
                            data = sock.recv(_CHUNK)
                        except ConnectionRefusedError:  # ICMP unreachable from upstream
                            self.errors.append(f"UDP upstream {self.upstream} refused a datagram")
                            continue
                        self._sink.write([udp_frame(self.upstream, peers[sock], data)])
                        self._server.sendto(data, peers[sock])
        finally:
            for up in upstreams.values():
                up.close()
