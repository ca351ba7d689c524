"""Why a serial device cannot be opened, when the reason is permissions, and how to fix it.

On Linux a USB-serial device (``/dev/ttyUSB0``, ``/dev/ttyACM0``) belongs to ``root:dialout`` (Arch:
``uucp``) with mode 660: a user outside that group gets EACCES, and pyserial says only "Permission
denied". The fix is one group membership, which takes effect at the next login.
"""

from __future__ import annotations

import errno
import grp
import os
import stat

import serial

DENIED_ERRNOS = frozenset({errno.EACCES, errno.EPERM})


class PortAccessDenied(serial.SerialException):
    """The port exists but this user may not open it; the message names the group and the fix."""


def access_denied(port: str, exc: BaseException, board: str | None = None) -> PortAccessDenied | None:
    """A :class:`PortAccessDenied` for ``exc`` if it is a permission error opening device path
    ``port`` (URLs are not devices: None), else None (the caller keeps its own message)."""
    if "://" in port or getattr(exc, "errno", None) not in DENIED_ERRNOS:
        return None
    denied = PortAccessDenied(denied_message(port, board))
    denied.errno = errno.EACCES  # set after: OSError(errno, msg) would print as "[Errno 13] msg"
    return denied


def denied_message(port: str, board: str | None = None) -> str:
    """What is wrong with ``port``'s permissions for this user, and the command that fixes it."""
    who = f"board {board}: " if board else ""
    try:
        info = os.stat(port)
    except OSError as exc:  # gone since the open failed: say what we know
        return f"{who}permission denied opening serial port {port} (and it cannot be inspected: {exc})"
    group = _group_name(info.st_gid)
    denied = f"{who}permission denied opening serial port {port} ({stat.filemode(info.st_mode)}, group {group})"
    udev = (
        'a udev rule giving the device to your user (e.g. SUBSYSTEM=="tty", ATTRS{idVendor}=="10c4", '
        'MODE="0666" in /etc/udev/rules.d/99-esp32.rules, then `sudo udevadm trigger`)'
    )
    if info.st_gid in os.getgroups() or info.st_gid == os.getegid():
        return f"{denied}: this process is in group {group}, but the device's mode denies the group. Fix: {udev}"
    return (
        f"{denied}: this process (uid {os.getuid()}) is not in group {group}. Fix: "
        f"`sudo usermod -aG {group} $USER`, then log out and in again (group membership is read at login; "
        f"`newgrp {group}` for this shell only); or {udev}"
    )


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:  # no name in /etc/group (a container): the number still works for usermod
        return str(gid)
