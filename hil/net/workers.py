"""Stoppable socket workers shared by the recording relay and the MITM proxy.

Threads blocked in ``accept``/``recv`` do not notice a closed socket reliably; every wait here is a
selector that also watches one end of a socket pair, and ``stop()`` writes to the other end, so all
waiting threads wake at once and see :attr:`WorkerGroup.stopping`.
"""

from __future__ import annotations

import selectors
import socket
import threading
from collections.abc import Callable


def open_listener(listen: tuple[str, int], *, udp: bool = False, backlog: int = 64) -> socket.socket:
    """A bound (and for TCP listening) IPv4 socket; the socket is closed again if setup fails."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(listen)
        if not udp:
            sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def bound_address(sock: socket.socket | None, what: str) -> tuple[str, int]:
    """``(host, port)`` a started listener is bound to; *what* names it in the error otherwise."""
    if sock is None:
        raise RuntimeError(f"{what} not started: no address yet")
    host, port = sock.getsockname()[:2]
    return host, port


class WorkerGroup:
    """Threads of one relay/proxy: spawn, wait for readable sockets, stop and join them all.

    The first thread spawned (the accept loop) is joined first at stop, so no thread can start after
    the group is joined.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None

    def open(self) -> None:
        """Create the wake-up socket pair (call before spawning)."""
        self._wake_r, self._wake_w = socket.socketpair()

    def spawn(self, target: Callable[..., None], *args: object, name: str) -> None:
        """Start a daemon thread running ``target(*args)``."""
        thread = threading.Thread(target=target, args=args, name=f"{self.name}-{name}", daemon=True)
        with self._lock:
            self._threads = self._threads[:1] + [t for t in self._threads[1:] if t.is_alive()] + [thread]
        thread.start()

    def wait_readable(self, socks: list[socket.socket], timeout: float | None = None) -> list[socket.socket]:
        """Sockets of *socks* that are readable; ``[]`` on timeout or when stopping."""
        if self.stopping.is_set():
            return []
        if self._wake_r is None:
            raise RuntimeError(f"worker group {self.name}: wait_readable() before open()")
        with selectors.DefaultSelector() as sel:
            for sock in socks:
                sel.register(sock, selectors.EVENT_READ, data=sock)
            sel.register(self._wake_r, selectors.EVENT_READ)  # data None: the stop wake-up
            return [key.data for key, _ in sel.select(timeout) if key.data is not None]

    def wait(self, seconds: float) -> bool:
        """Deliberate delay (a MITM ``delay`` rule) that ends early on stop; True if it ran in full."""
        return not self.stopping.wait(seconds)

    def stop(self, join_timeout: float) -> list[str]:
        """Wake and join every thread; returns the names of threads still alive after the timeout."""
        self.stopping.set()
        if self._wake_w is not None:
            self._wake_w.send(b"x")  # level-triggered: stays readable for every selector
        with self._lock:
            first = self._threads[:1]
        for thread in first:
            thread.join(join_timeout)
        with self._lock:
            threads = list(self._threads)
        alive = []
        for thread in threads:
            thread.join(join_timeout)
            if thread.is_alive():
                alive.append(thread.name)
        for sock in (self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        return alive
