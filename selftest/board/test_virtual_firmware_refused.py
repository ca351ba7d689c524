"""Images built for the virtual board (``"target": "virtual"`` in index.json) are refused on a board
that is not virtual, before anything is written; a team's index for another chip than the virtual
boards' is a usage error at start."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil.board import Board, BoardSpec
from hil.board.flash_app import VirtualFirmwareOnRealBoard, flash_app
from hil.images.build import build_images
from hil.images.index import Index

LAB_KEYS = Path(__file__).parents[2] / "firmware_builds" / "keys"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A virtual board (`hil sim`): its URL and its flash file."""
    state = tmp_path_factory.mktemp("sim")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hil.cli", "sim", "--port", "0", "--state-dir", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip() if proc.stdout else ""
        assert url.startswith("rfc2217://"), f"hil sim printed {url!r}"
        yield url, state / "flash.bin"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)


@pytest.fixture(scope="module")
def sim_images(tmp_path_factory: pytest.TempPathFactory) -> Index:
    return build_images(tmp_path_factory.mktemp("fb"), force=True, keys_dir=LAB_KEYS).index


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "no flash file"


def test_sim_images_are_refused_on_a_real_looking_board(sim: tuple[str, Path], sim_images: Index) -> None:
    url, flash_file = sim
    before = _digest(flash_file)
    real_looking = BoardSpec("bench-1", url)  # a remote board as a bench declares one: not virtual
    with Board(real_looking) as board, pytest.raises(VirtualFirmwareOnRealBoard) as info:
        flash_app(board, sim_images, "app-v1")
    text = str(info.value)
    assert f"board bench-1 ({url}) is a real board" in text
    assert f"firmware index {sim_images.directory / 'index.json'}" in text and "nothing was written" in text
    assert "--hil-firmware-dir=DIR" in text and "README.md#firmware" in text
    assert _digest(flash_file) == before  # not one byte


def test_the_same_images_flash_onto_the_virtual_board(sim: tuple[str, Path], sim_images: Index) -> None:
    url, _ = sim
    with Board(BoardSpec("vdut", url, capabilities=frozenset({"virtual"}), reset_pulse=0.0)) as board:
        report = flash_app(board, sim_images, "app-v1", force=True)
    assert [r.action for r in report.regions if r.label.startswith("app-v1")] == ["written"], report.format()


def test_hil_flash_refuses_sim_images_unless_the_port_is_virtual(sim: tuple[str, Path], sim_images: Index) -> None:
    url, flash_file = sim
    before = _digest(flash_file)
    command = [sys.executable, "-m", "hil.cli", "flash", "--port", url, "--dir", str(sim_images.directory), "app-v1"]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "built by `hil images build` for the virtual board" in refused.stderr
    assert f"nothing was written to {url}" in refused.stderr and "--virtual" in refused.stderr
    assert _digest(flash_file) == before
    accepted = subprocess.run([*command, "--virtual"], capture_output=True, text=True, timeout=120)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr


def test_index_for_another_chip_than_the_virtual_boards_is_a_usage_error(pytester: pytest.Pytester) -> None:
    team_build = pytester.path / "team-build"
    team_build.mkdir()
    index = {"schema": 1, "chip": "esp32c6", "input_fingerprint": "", "artifacts": []}  # a team's hand-written index
    (team_build / "index.json").write_text(json.dumps(index))
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--hil-virtual", f"--hil-firmware-dir={team_build}"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    result.stderr.fnmatch_lines(
        [
            f"*firmware index {team_build / 'index.json'} is built for esp32c6, but virtual boards are esp32*"
            "--hil-sim-chip=esp32c6*"
        ]
    )
    agreeing = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--hil-virtual", "--hil-sim-chip=esp32c6", f"--hil-firmware-dir={team_build}"
    )
    agreeing.assert_outcomes(passed=1)
