"""ESP-IDF NVS partition codec: parse pages (CRC32 checked), read values, update a value the NVS way.

Format (see /work/shared/reference/image-formats.md): 4 KiB pages, a 32-byte header, a 2-bit-per-
entry state bitmap, 126 entries of 32 bytes. Reads follow NVS: an entry or page whose CRC fails is
skipped and reported in ``NvsImage.errors``; when a key appears twice (a power cut between writing
the new entry and erasing the old one), the later one wins. Writes append a new entry, then mark the
old one erased, with a checkpoint callback in between so a power cut can be modelled there.
"""

from __future__ import annotations

import enum
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

PAGE_SIZE = 0x1000
ENTRY_SIZE = 32
ENTRIES_PER_PAGE = 126
BITMAP_OFFSET = 32
FIRST_ENTRY_OFFSET = 64
PAGE_VERSION = 0xFE  # version 2: multipage blobs
KEY_MAX = 15
CHUNK_ANY = 0xFF
BLOB_VERSION_OFFSETS = (0x00, 0x80)  # NVS alternates chunk_start so old and new chunks coexist


class PageState(enum.IntEnum):
    EMPTY = 0xFFFFFFFF
    ACTIVE = 0xFFFFFFFE
    FULL = 0xFFFFFFFC
    FREEING = 0xFFFFFFF8


class EntryState(enum.IntEnum):
    EMPTY = 0b11
    WRITTEN = 0b10
    ERASED = 0b00


class ItemType(enum.IntEnum):
    U8 = 0x01
    I8 = 0x11
    U16 = 0x02
    I16 = 0x12
    U32 = 0x04
    I32 = 0x14
    U64 = 0x08
    I64 = 0x18
    SZ = 0x21
    BLOB = 0x41  # version-1 blob: its data follows in one run of entries, no index
    BLOB_DATA = 0x42
    BLOB_IDX = 0x48


_INT_FORMATS = {
    ItemType.U8: "<B",
    ItemType.I8: "<b",
    ItemType.U16: "<H",
    ItemType.I16: "<h",
    ItemType.U32: "<I",
    ItemType.I32: "<i",
    ItemType.U64: "<Q",
    ItemType.I64: "<q",
}


class NvsError(ValueError):
    """The partition cannot answer or take the request (missing namespace, full, bad value)."""


def crc32(data: bytes) -> int:
    """NVS's CRC32 (``esp_rom_crc32_le(0xffffffff, ...)``)."""
    return zlib.crc32(data, 0xFFFFFFFF) & 0xFFFFFFFF


def entry_crc(raw: bytes) -> int:
    """CRC of one 32-byte entry: everything except the CRC field itself."""
    return crc32(raw[0:4] + raw[8:32])


@dataclass(frozen=True)
class Item:
    """One item (possibly spanning several entries) as stored."""

    page: int  # page index within the partition
    slot: int  # first entry index within the page
    ns: int
    type: int
    span: int
    chunk: int
    key: str
    data: bytes  # the 8-byte data field
    payload: bytes = b""  # following span-1 entries (SZ, BLOB_DATA), trimmed to size

    @property
    def order(self) -> tuple[int, int]:
        return (self.page, self.slot)


@dataclass
class NvsImage:
    """A parsed partition: written items in write order, page facts, and integrity problems."""

    items: list[Item] = field(default_factory=list)
    page_states: list[int] = field(default_factory=list)
    page_seqs: list[int | None] = field(default_factory=list)
    next_free: list[int] = field(default_factory=list)  # first never-written entry per page
    errors: list[str] = field(default_factory=list)

    def namespaces(self) -> dict[str, int]:
        """Namespace name -> index."""
        return {i.key: i.data[0] for i in self.items if i.ns == 0 and i.type == ItemType.U8}

    def find(self, namespace: str, key: str, types: tuple[int, ...]) -> Item | None:
        """The newest written item of ``namespace/key`` among ``types``."""
        ns = self.namespaces().get(namespace)
        found = [i for i in self.items if ns is not None and i.ns == ns and i.key == key and i.type in types]
        return found[-1] if found else None

    def get(self, namespace: str, key: str) -> int | str | bytes | None:
        """Value of ``namespace/key``: int for integer types, str for strings, bytes for blobs."""
        item = self.find(namespace, key, (*_INT_FORMATS, ItemType.SZ, ItemType.BLOB, ItemType.BLOB_IDX))
        if item is None:
            return None
        if item.type in _INT_FORMATS:
            fmt = _INT_FORMATS[ItemType(item.type)]
            return struct.unpack_from(fmt, item.data)[0]
        if item.type == ItemType.SZ:
            return item.payload.split(b"\0", 1)[0].decode("utf-8", "replace")
        if item.type == ItemType.BLOB:
            return item.payload
        return self._blob(item)

    def _blob(self, index: Item) -> bytes | None:
        size, count, start = struct.unpack_from("<IBB", index.data)
        chunks = {
            i.chunk: i.payload
            for i in self.items
            if i.ns == index.ns and i.key == index.key and i.type == ItemType.BLOB_DATA
        }
        parts = [chunks.get(start + n) for n in range(count)]
        if any(p is None for p in parts):
            self.errors.append(f"blob {index.key!r}: missing chunk(s) of {count} from {start}")
            return None
        blob = b"".join(parts)  # type: ignore[arg-type]
        return blob if len(blob) == size else None


def _page_header(state: int, seq: int) -> bytes:
    body = struct.pack("<IB", seq, PAGE_VERSION) + b"\xff" * 19
    return struct.pack("<I", state) + body + struct.pack("<I", crc32(body))


def _entry_states(bitmap: bytes) -> list[int]:
    return [(bitmap[i // 4] >> ((i % 4) * 2)) & 0b11 for i in range(ENTRIES_PER_PAGE)]


def _parse_page(data: bytes, index: int, image: NvsImage) -> None:
    page = data[index * PAGE_SIZE : (index + 1) * PAGE_SIZE]
    state, seq = struct.unpack_from("<II", page)
    image.page_states.append(state)
    image.page_seqs.append(None)
    image.next_free.append(0)
    if state == PageState.EMPTY:
        return
    if crc32(page[4:28]) != struct.unpack_from("<I", page, 28)[0]:
        image.errors.append(f"page {index}: header CRC mismatch, page skipped")
        return
    image.page_seqs[-1] = seq
    states = _entry_states(page[BITMAP_OFFSET:FIRST_ENTRY_OFFSET])
    image.next_free[-1] = max((n + 1 for n, s in enumerate(states) if s != EntryState.EMPTY), default=0)
    slot = 0
    while slot < ENTRIES_PER_PAGE:
        raw = page[FIRST_ENTRY_OFFSET + slot * ENTRY_SIZE :][:ENTRY_SIZE]
        if states[slot] != EntryState.WRITTEN:
            slot += 1
            continue
        item, span = _parse_item(page, slot, raw, index, image)
        slot += span
        if item:
            image.items.append(item)


def _parse_item(page: bytes, slot: int, raw: bytes, index: int, image: NvsImage) -> tuple[Item | None, int]:
    """The item at ``slot`` (``None`` if corrupt) and how many entries to advance."""
    ns, typ, span, chunk, crc = struct.unpack_from("<BBBBI", raw)
    key = raw[8:24].split(b"\0", 1)[0].decode("ascii", "replace")
    where = f"NVS page {index} entry {slot} ({key!r})"
    if entry_crc(raw) != crc:
        image.errors.append(f"{where}: entry CRC mismatch, skipped")
        return None, 1
    if span < 1 or slot + span > ENTRIES_PER_PAGE:
        image.errors.append(f"{where}: bad span {span}, skipped")
        return None, 1
    payload = b""
    if typ in (ItemType.SZ, ItemType.BLOB, ItemType.BLOB_DATA):
        size, _, data_crc = struct.unpack_from("<HHI", raw, 24)
        start = FIRST_ENTRY_OFFSET + (slot + 1) * ENTRY_SIZE
        payload = page[start : start + size]
        if size > (span - 1) * ENTRY_SIZE or crc32(payload) != data_crc:
            image.errors.append(f"{where}: data CRC mismatch, skipped")
            return None, span
    return Item(index, slot, ns, typ, span, chunk, key, raw[24:32], payload), span


def parse(data: bytes) -> NvsImage:
    """Parse a whole NVS partition image (a multiple of 4 KiB)."""
    if len(data) % PAGE_SIZE or not data:
        raise NvsError(f"NVS partition size 0x{len(data):x} is not a non-zero multiple of 4 KiB")
    image = NvsImage()
    for index in range(len(data) // PAGE_SIZE):
        _parse_page(data, index, image)
    order = {p: s for p, s in enumerate(image.page_seqs) if s is not None}
    image.items.sort(key=lambda i: (order.get(i.page, -1), i.slot))
    return image


# ---------------------------------------------------------------- writing


class FlashStorage(Protocol):
    """The flash operations the writer needs (``hil.sim.flash.NorFlash`` offers them)."""

    def read(self, offset: int, length: int) -> bytes: ...
    def write(self, offset: int, data: bytes) -> None: ...
    def erase(self, offset: int, length: int) -> None: ...


def _entry(ns: int, typ: int, span: int, chunk: int, key: str, data: bytes) -> bytes:
    body = struct.pack("<BBBB", ns, typ, span, chunk)
    rest = key.encode("ascii").ljust(16, b"\0") + data.ljust(8, b"\xff")
    return body + struct.pack("<I", crc32(body + rest)) + rest


def _encode_var(ns: int, typ: int, chunk: int, key: str, payload: bytes) -> bytes:
    span = 1 + (len(payload) + ENTRY_SIZE - 1) // ENTRY_SIZE
    head = _entry(ns, typ, span, chunk, key, struct.pack("<HHI", len(payload), 0xFFFF, crc32(payload)))
    return head + payload.ljust((span - 1) * ENTRY_SIZE, b"\xff")


def stored_bytes(ns: int, item: Item) -> bytes:
    """The entries of *item* as stored (same type, span, chunk and data) under namespace index *ns*."""
    head = _entry(ns, item.type, item.span, item.chunk, item.key, item.data)
    return head + item.payload.ljust((item.span - 1) * ENTRY_SIZE, b"\xff")


def encode_items(ns: int, key: str, value: int | str | bytes, item_type: ItemType, blob_start: int = 0) -> list[bytes]:
    """Entry bytes of the item(s) that store ``value`` (a blob: data chunk then index)."""
    if len(key) > KEY_MAX or not key:
        raise NvsError(f"NVS key {key!r} must be 1..{KEY_MAX} characters")
    if item_type in _INT_FORMATS:
        try:
            data = struct.pack(_INT_FORMATS[item_type], value)
        except struct.error as exc:
            raise NvsError(f"value {value!r} does not fit {item_type.name} for {key!r}") from exc
        return [_entry(ns, item_type, 1, CHUNK_ANY, key, data)]
    if item_type == ItemType.SZ:
        return [_encode_var(ns, ItemType.SZ, CHUNK_ANY, key, str(value).encode() + b"\0")]
    if item_type == ItemType.BLOB_IDX:
        blob = bytes(value)  # type: ignore[arg-type]
        return [
            _encode_var(ns, ItemType.BLOB_DATA, blob_start, key, blob),
            _entry(ns, ItemType.BLOB_IDX, 1, CHUNK_ANY, key, struct.pack("<IBB", len(blob), 1, blob_start)),
        ]
    raise NvsError(f"cannot write NVS type {item_type!r}")


class NvsWriter:
    """Writes values into an NVS partition on flash, the way NVS does it."""

    def __init__(
        self, storage: FlashStorage, base: int, size: int, checkpoint: Callable[[str], None] | None = None
    ) -> None:
        self._storage, self._base, self._size = storage, base, size
        self._checkpoint = checkpoint or (lambda key: None)

    def read(self) -> NvsImage:
        """Parse the partition as it is on flash now."""
        return parse(self._storage.read(self._base, self._size))

    def set(self, namespace: str, key: str, value: int | str | bytes, item_type: ItemType) -> None:
        """Write ``namespace/key``: new entry, checkpoint, then mark the old entry (if any) erased."""
        image, ns = self._namespace(namespace)
        old = [i for i in image.items if i.ns == ns and i.key == key]
        old_idx = image.find(namespace, key, (ItemType.BLOB_IDX,))
        start = BLOB_VERSION_OFFSETS[1] if old_idx and old_idx.data[5] == 0 else 0
        for raw in encode_items(ns, key, value, item_type, blob_start=start):
            self._append(image, raw)
            image = self.read()
        self._checkpoint(key)  # power cut here: old and new both written; readers take the new
        for item in old:
            self._set_state(item.page, item.slot, item.span, EntryState.ERASED)

    def copy(self, namespace: str, item: Item) -> None:
        """Append *item*, read from another partition, under *namespace* exactly as it was stored
        (type, chunk, bytes). Nothing is erased and no checkpoint is passed: this builds a partition."""
        image, ns = self._namespace(namespace)
        self._append(image, stored_bytes(ns, item))

    def _namespace(self, namespace: str) -> tuple[NvsImage, int]:
        """The partition as read now and *namespace*'s index (its entry written first if it is new)."""
        image = self.read()
        ns = image.namespaces().get(namespace)
        if ns is None:
            ns = max(image.namespaces().values(), default=0) + 1
            self._append(image, _entry(0, ItemType.U8, 1, CHUNK_ANY, namespace, bytes([ns])))
            image = self.read()
        return image, ns

    def _append(self, image: NvsImage, raw: bytes) -> None:
        span = len(raw) // ENTRY_SIZE
        page = self._page_with_room(image, span)
        slot = image.next_free[page]
        self._storage.write(self._entry_offset(page, slot), raw)
        self._set_state(page, slot, span, EntryState.WRITTEN)

    def _page_with_room(self, image: NvsImage, span: int) -> int:
        active = self._active_pages(image)
        if active and image.next_free[active[-1]] + span <= ENTRIES_PER_PAGE:
            return active[-1]
        if len(self._empty_pages(image)) < 2:  # NVS keeps one empty page for garbage collection
            self._reclaim(image)
            image = self.read()
            return self._page_with_room(image, span)
        return self._open_page(image)

    @staticmethod
    def _active_pages(image: NvsImage) -> list[int]:
        return sorted(
            (p for p, s in enumerate(image.page_states) if s == PageState.ACTIVE and image.page_seqs[p] is not None),
            key=lambda p: image.page_seqs[p] or 0,
        )

    @staticmethod
    def _empty_pages(image: NvsImage) -> list[int]:
        return [p for p, s in enumerate(image.page_states) if s == PageState.EMPTY]

    def _open_page(self, image: NvsImage) -> int:
        """Close the active page(s) and start the first empty page with the next sequence number."""
        empty = self._empty_pages(image)
        if not empty:
            raise NvsError(f"NVS partition at 0x{self._base:x} has no empty page left: erase and reprovision it")
        for page in self._active_pages(image):
            self._storage.write(self._base + page * PAGE_SIZE, struct.pack("<I", PageState.FULL))
        seq = max((s for s in image.page_seqs if s is not None), default=-1) + 1
        self._storage.write(self._base + empty[0] * PAGE_SIZE, _page_header(PageState.ACTIVE, seq))
        image.page_states[empty[0]], image.page_seqs[empty[0]] = PageState.ACTIVE, seq
        image.next_free[empty[0]] = 0
        return empty[0]

    def _reclaim(self, image: NvsImage) -> None:
        """Garbage collection as NVS does it: move the live items of the closed page with the most
        erased entries into a fresh page, then erase that page."""
        live = [sum(i.span for i in image.items if i.page == p) for p in range(len(image.page_states))]
        closed = [
            p
            for p, s in enumerate(image.page_states)
            if s in (PageState.FULL, PageState.FREEING) and image.page_seqs[p] is not None
        ]
        victim = max(closed, key=lambda p: image.next_free[p] - live[p], default=None)
        if victim is None or image.next_free[victim] == live[victim]:
            raise NvsError(f"NVS partition at 0x{self._base:x} is full of live data: erase and reprovision it")
        newest = {(i.ns, i.key, i.chunk): i for i in image.items}  # later duplicates win
        moving = [i for i in image.items if i.page == victim and newest[(i.ns, i.key, i.chunk)] is i]
        target = self._open_page(image)
        victim_at = self._base + victim * PAGE_SIZE
        self._storage.write(victim_at, struct.pack("<I", PageState.FREEING))
        raw_page = self._storage.read(victim_at, PAGE_SIZE)
        for item in moving:
            start = FIRST_ENTRY_OFFSET + item.slot * ENTRY_SIZE
            slot = image.next_free[target]
            self._storage.write(self._entry_offset(target, slot), raw_page[start : start + item.span * ENTRY_SIZE])
            self._set_state(target, slot, item.span, EntryState.WRITTEN)
            image.next_free[target] = slot + item.span
        self._storage.erase(victim_at, PAGE_SIZE)

    def _entry_offset(self, page: int, slot: int) -> int:
        return self._base + page * PAGE_SIZE + FIRST_ENTRY_OFFSET + slot * ENTRY_SIZE

    def _set_state(self, page: int, first: int, span: int, state: EntryState) -> None:
        # NOR AND semantics: write 1s everywhere except the two bits being lowered.
        bitmap = bytearray(b"\xff" * (FIRST_ENTRY_OFFSET - BITMAP_OFFSET))
        for slot in range(first, first + span):
            bitmap[slot // 4] &= ~((~state & 0b11) << ((slot % 4) * 2)) & 0xFF
        lo, hi = first // 4, (first + span - 1) // 4 + 1
        self._storage.write(self._base + page * PAGE_SIZE + BITMAP_OFFSET + lo, bytes(bitmap[lo:hi]))
