"""index.json: the artifact contract the harness and scenarios rely on."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from hil.images.index import ArtifactNotFound, Index, IndexMissingError, load_index
from hil.images.layout import layout_for

EXPECTED = {  # name: (role, version, boots)
    "bootloader": ("bootloader", None, None), "app-v1": ("app", "1.0.0", True),
    "app-v2": ("app", "2.0.0", True), "nvs": ("nvs", None, None),
    "unsigned": ("variant", "2.0.0", False), "other-key": ("variant", "2.0.0", False),
    "bitflip": ("variant", "2.0.0", False), "truncated": ("variant", "2.0.0", False),
    "bad-magic": ("variant", "2.0.0", False), "downgrade": ("variant", "0.9.0", True),
    "selftest-fail": ("variant", "2.0.0", True),
    "mcuboot-signing-key": ("mcuboot-signing-key", None, None),
    "fota-signing-key": ("fota-signing-key", None, None), "fota-aes-key": ("fota-aes-key", None, None),
    "attacker-key": ("attacker-key", None, None),
}


def test_index_holds_the_contracted_artifacts(built: Index) -> None:
    layout = layout_for("esp32")
    doc = json.loads((built.directory / "index.json").read_text())
    rows = {a["name"]: a for a in doc["artifacts"]}
    assert set(EXPECTED) <= set(rows)
    for name, (role, version, boots) in EXPECTED.items():
        row = rows[name]
        assert (row["role"], row["version"], row["boots"]) == (role, version, boots), name
        assert not Path(row["path"]).is_absolute() and row["chip"] == "esp32"
        data = (built.directory / row["path"]).read_bytes()
        assert (row["size"], row["sha256"]) == (len(data), hashlib.sha256(data).hexdigest()), name
    offsets = {n: rows[n]["offset"] for n in EXPECTED}
    assert offsets["bootloader"] == layout.bootloader and offsets["nvs"] == layout.nvs
    assert all(offsets[n] == layout.primary_slot for n, e in EXPECTED.items() if e[0] in ("app", "variant"))
    assert all(offsets[n] is None for n, e in EXPECTED.items() if e[0].endswith("key"))
    assert all(len(rows[n]["fingerprint"]) == 16 for n, e in EXPECTED.items() if e[0].endswith("key"))


def test_lookups(built: Index) -> None:
    index = load_index(built.directory)
    assert index.get("app-v1").version == "1.0.0"
    assert [a.name for a in index.by_role("app")] == ["app-v1", "app-v2", "app-v1.9", "app-v1.10"]
    assert index.path("nvs") == (built.directory / "nvs.bin").resolve()
    with pytest.raises(ArtifactNotFound, match="app-v3.*app-v1"):
        index.get("app-v3")
    with pytest.raises(ArtifactNotFound, match="unknown role"):
        index.by_role("firmware")


def test_flash_plan_orders_and_guards(built: Index) -> None:
    plan = built.flash_plan(["app-v1", "nvs", "bootloader"])
    assert [(i.name, i.offset) for i in plan] == [
        ("bootloader", 0x1000), ("nvs", 0x9000), ("app-v1", 0x20000)]
    assert plan[2].path.read_bytes()[:4] == bytes.fromhex("3db8f396")
    with pytest.raises(ValueError, match="overlaps.*app-v1.*bitflip|overlaps.*bitflip.*app-v1"):
        built.flash_plan(["app-v1", "bitflip"])
    with pytest.raises(ValueError, match="not flashable"):
        built.flash_plan(["fota-aes-key"])


def test_missing_index_says_how_to_build(tmp_path: Path) -> None:
    with pytest.raises(IndexMissingError, match="hil images build --out"):
        load_index(tmp_path)


def test_foreign_schema_is_refused(tmp_path: Path) -> None:
    (tmp_path / "index.json").write_text('{"schema": 99, "artifacts": []}')
    with pytest.raises(ValueError, match="schema 99"):
        load_index(tmp_path)


def test_hil_built_images_are_marked_virtual(built: Index) -> None:
    assert json.loads((built.directory / "index.json").read_text())["target"] == "virtual"
    assert load_index(built.directory).virtual_only


def test_a_teams_hand_written_index_is_a_device_build(tmp_path: Path) -> None:
    (tmp_path / "index.json").write_text('{"schema": 1, "chip": "esp32", "artifacts": []}')  # no target field
    index = load_index(tmp_path)
    assert (index.target, index.virtual_only, index.input_fingerprint) == ("device", False, "")


def test_an_index_built_before_the_target_field_is_virtual(built: Index, tmp_path: Path) -> None:
    doc = json.loads((built.directory / "index.json").read_text())
    del doc["target"]  # what `hil images build` wrote before: it still has its input fingerprint
    (tmp_path / "index.json").write_text(json.dumps(doc))
    assert load_index(tmp_path).virtual_only
