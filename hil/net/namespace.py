"""Running harness code inside a network namespace of this host (a virtual board's own, or a bench
AP's): sockets created there live on the board's side of the network.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
NETNS_DIR = "/run/netns"  # where `ip netns add` puts its namespaces
_CLONE_NEWNET = 0x40000000


def namespace_path(namespace: str) -> str:
    """The file of network namespace *namespace* (a name of ``ip netns`` or a path)."""
    return namespace if "/" in namespace else os.path.join(NETNS_DIR, namespace)


def run_in_namespace(namespace: str, call: Callable[[], T]) -> T:
    """Run *call* on a thread that entered network namespace *namespace* (sockets it creates live
    there); the calling thread's namespace is untouched. ``OSError`` if it cannot be entered."""
    outcome: dict[str, object] = {}

    def enter_and_call() -> None:
        try:
            with open(namespace_path(namespace), "rb") as handle:
                if ctypes.CDLL(None, use_errno=True).setns(handle.fileno(), _CLONE_NEWNET) != 0:
                    code = ctypes.get_errno()
                    raise OSError(code, f"cannot enter network namespace {namespace}: {os.strerror(code)}")
            outcome["value"] = call()
        except Exception as exc:  # noqa: BLE001 -- handed to the caller's thread and re-raised there
            outcome["error"] = exc

    thread = threading.Thread(target=enter_and_call, name=f"netns-{namespace}", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
