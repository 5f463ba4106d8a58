"""What a SQLite database file itself says, read byte by byte (for `fristed check`).

`fristed check` must report the real state, not what its own connection
sets: opening the file through the gateway's engine would switch it to WAL
and turn secure_delete on for that connection, and then ask. So the file
is read before any connection is made:

* the journal mode a file is in is stored in its header (bytes 18 and 19
  are 2 for WAL, 1 for a rollback journal);
* `secure_delete` is a per-connection setting, so "the real state" is
  what the connections that deleted rows did: with it on, a freed cell's
  bytes are zeroed (a free block holds zeros after its 4-byte header) and a
  freed page is zeroed whole (a freelist leaf page is all zeros). A free
  block or free page that holds anything else was left by a delete without
  secure_delete, and still holds deleted data.

The file is read as last checkpointed; pages still only in the WAL are
not seen (the gateway empties the WAL within seconds, `gateway.scrub`).
"""

import mmap
from dataclasses import dataclass
from pathlib import Path

HEADER = b"SQLite format 3\x00"
BTREE_TYPES = {2, 5, 10, 13}
MAX_CHAIN = 100_000  # free blocks per page or trunk pages: more means a damaged file


@dataclass(frozen=True)
class FileState:
    wal: bool  # the header says WAL
    pages: int
    free_pages: int
    dirty_free_pages: int  # freelist leaf pages that are not all zeros
    dirty_free_blocks: int  # free blocks inside b-tree pages that are not all zeros


def _u16(data: bytes | mmap.mmap, at: int) -> int:
    return int.from_bytes(data[at : at + 2], "big")


def _u32(data: bytes | mmap.mmap, at: int) -> int:
    return int.from_bytes(data[at : at + 4], "big")


def _zero(data: bytes | mmap.mmap, start: int, end: int) -> bool:
    return not data[start:end].strip(b"\x00")


def read_state(path: Path) -> FileState:
    """Parse the header, walk the freelist and every b-tree page's free blocks."""
    with path.open("rb") as handle:
        if path.stat().st_size < 100:
            raise ValueError(f"{path.name} is not a SQLite database (too short)")
        data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            return _read(data)
        finally:
            data.close()


def _read(data: mmap.mmap) -> FileState:
    if data[:16] != HEADER:
        raise ValueError("not a SQLite database (no SQLite header)")
    page_size = _u16(data, 16)
    page_size = 65536 if page_size == 1 else page_size
    usable = page_size - data[20]
    pages = len(data) // page_size

    def page(number: int) -> int:
        return (number - 1) * page_size

    free_leaves: set[int] = set()
    trunks: set[int] = set()
    trunk = _u32(data, 32)
    while trunk and trunk <= pages and trunk not in trunks and len(trunks) < MAX_CHAIN:
        trunks.add(trunk)
        base = page(trunk)
        count = min(_u32(data, base + 4), (usable - 8) // 4)
        free_leaves.update(n for i in range(count) if 0 < (n := _u32(data, base + 8 + 4 * i)) <= pages)
        trunk = _u32(data, base)
    dirty_pages = sum(1 for n in free_leaves if not _zero(data, page(n), page(n) + usable))
    dirty_blocks = 0
    for number in range(1, pages + 1):
        if number in free_leaves or number in trunks:
            continue
        base = page(number)
        head = base + (100 if number == 1 else 0)
        if data[head] not in BTREE_TYPES:
            continue  # an overflow or pointer-map page: no free blocks
        block, seen = _u16(data, head + 1), 0
        while block and block + 4 <= usable and seen < MAX_CHAIN:
            size = _u16(data, base + block + 2)
            if not _zero(data, base + block + 4, base + min(block + size, usable)):
                dirty_blocks += 1
            block, seen = _u16(data, base + block), seen + 1
    return FileState(
        wal=data[18] == 2 and data[19] == 2,
        pages=pages,
        free_pages=len(free_leaves) + len(trunks),
        dirty_free_pages=dirty_pages,
        dirty_free_blocks=dirty_blocks,
    )
