"""The flash time model: esptool's per-MB allowances plus the wire time at the link's baud rate.
A 1 MiB image at 115200 baud takes ~91 s on the wire alone; the bound used to be 72 s."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

import hil.flashing.session as session_module
from hil.flashing import FlashRegion, FlashTiming
from hil.flashing import timing as model
from hil.flashing.esptool_host import esptool_module
from hil.flashing.session import FlashSession

MIB = 1024 * 1024


def test_figures_are_esptools():
    loader = esptool_module().loader
    assert model.ERASE_WRITE_TIMEOUT_PER_MB == loader.ERASE_WRITE_TIMEOUT_PER_MB
    assert model.MD5_TIMEOUT_PER_MB == loader.MD5_TIMEOUT_PER_MB
    assert model.ERASE_REGION_TIMEOUT_PER_MB == loader.ERASE_REGION_TIMEOUT_PER_MB
    assert model.DEFAULT_TIMEOUT == loader.DEFAULT_TIMEOUT
    for size in (0, 4096, 0x4000, MIB, 4 * MIB):
        assert model.timeout_per_mb(40, size) == loader.timeout_per_mb(40, size)


def test_one_mib_at_115200_fits_with_room_and_scales_with_baud():
    slow, fast = FlashTiming(115200), FlashTiming(921600)
    assert slow.wire(MIB) == pytest.approx(91.0, abs=0.1)  # 10 bits a byte
    assert slow.write_bound(MIB) > slow.expected(MIB) > 20 + MIB / 20_000  # the old bound: 72 s
    assert fast.write_bound(MIB) < slow.write_bound(MIB)
    assert fast.write_bound(MIB, sent=MIB // 2) < fast.write_bound(MIB)  # compression shortens the wire
    assert "at 115200 baud: wire 91.0 s" in slow.describe(MIB)


def test_a_write_is_bounded_by_the_model_at_the_links_baud(monkeypatch):
    bounds: list[float] = []
    monkeypatch.setattr(session_module, "run_bounded", lambda call, timeout, *a, **k: bounds.append(timeout))
    port = SimpleNamespace(port="fake://dut", close=lambda: None)
    session = FlashSession(port, "dut")  # type: ignore[arg-type]
    session._esp = object()
    data = os.urandom(MIB)
    for baud in (115200, 921600):
        session.baud = baud
        session.write(FlashRegion(0x10000, data, "app"))
    sent = model.compressed_size(data)
    assert bounds == [FlashTiming(115200).write_bound(MIB, sent), FlashTiming(921600).write_bound(MIB, sent)]
    assert bounds[0] > 130  # wire ~91 s + esptool's 42 s erase/write + 8 s MD5 + margin
