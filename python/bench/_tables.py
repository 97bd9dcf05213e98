"""The raw binary inputs of the MLOps tasks (standard library only).

Each file starts with an 8-byte magic and a few little-endian u64 header fields, followed by
little-endian 8-byte columns (f64 or i64); the task scripts document their layout. The Rust
generator (``datagen``) writes them; every implementation reads the same bytes.
"""

from __future__ import annotations

import struct
import sys
from array import array
from typing import TYPE_CHECKING

from _kernel import fail

if TYPE_CHECKING:
    from pathlib import Path


def read_header(path: Path, magic: bytes, fields: int) -> list[int]:
    """Check the magic; return the ``fields`` header values (then call ``check_length``)."""
    with path.open("rb") as f:
        head = f.read(8 + 8 * fields)
    if len(head) < 8 + 8 * fields or head[:8] != magic:
        fail(f"{path}: not a {magic.decode()} file (bad magic or too short)")
    return list(struct.unpack(f"<{fields}Q", head[8:]))


def check_length(path: Path, fields: int, body_items: int) -> None:
    """The file must hold the header and exactly ``body_items`` 8-byte values."""
    want = 8 + 8 * fields + 8 * body_items
    size = path.stat().st_size
    if size != want:
        fail(f"{path}: length {size} does not match its header ({want} bytes expected)")


def header_bytes(fields: int) -> int:
    """Size of a header with ``fields`` u64 fields."""
    return 8 + 8 * fields


def read_column(data: bytes | memoryview, typecode: str, start: int, count: int) -> array:
    """``count`` little-endian values of ``typecode`` ('d' or 'q') from byte offset ``start``."""
    col = array(typecode)
    col.frombytes(data[start : start + 8 * count])
    if sys.byteorder != "little":
        col.byteswap()
    return col
