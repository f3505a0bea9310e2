"""Reading IDX files, the format of MNIST and Fashion-MNIST, plain or gzip-compressed.

IDX layout (Y. LeCun, "THE MNIST DATABASE", section "FILE FORMATS FOR THE MNIST DATABASE",
http://yann.lecun.com/exdb/mnist/):

* bytes 0-1: zero; byte 2: data type code (0x08 = unsigned byte); byte 3: number of dimensions;
* one big-endian uint32 per dimension (the sizes);
* the values, row-major. Image files have magic number 0x00000803 (unsigned bytes, 3 dimensions:
  count, rows, columns) and label files 0x00000801 (unsigned bytes, 1 dimension: count).

Validation is strict, because a half-downloaded or mislabelled file must never load as data.
"""
from __future__ import annotations

import contextlib
import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from vaekit.errors import DataError
from vaekit.limits import check_memory

GZIP_SIGNATURE = b"\x1f\x8b"  # RFC 1952, section 2.3.1: ID1 ID2
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
UNSIGNED_BYTE = 0x08
EXTRA_BYTES_READ = 1 << 20    # read past the announced data, to name how many bytes too many a file has
READ_CHUNK = 16 << 20          # bytes per read()
LOADED_COPIES = 9             # bytes in memory per data byte: the bytes, float32 values, their split copies
REPAIR_HINT = ("delete it so it is downloaded again, re-download or reinstall it, "
               "or pass --data-dir DIR with good copies")


def parse_idx(data: bytes, path: Path, *, magic: int) -> np.ndarray:
    """Parse IDX bytes that must carry ``magic`` (:data:`IMAGES_MAGIC` or :data:`LABELS_MAGIC`)."""
    if len(data) < 4:
        raise DataError(f"{path} is truncated: it holds {len(data)} bytes, fewer than an IDX header: {REPAIR_HINT}")
    _check_magic(data, path, magic)
    ndim = data[3]
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DataError(f"{path} is truncated inside its IDX header: {REPAIR_HINT}")
    shape = struct.unpack(f">{ndim}I", data[4:header_size])
    expected = math.prod(shape)
    actual = len(data) - header_size
    if actual != expected:
        problem = "is truncated" if actual < expected else f"has {actual - expected} bytes too many"
        raise DataError(f"{path} {problem}: its header announces shape {'x'.join(map(str, shape))} = "
                        f"{expected} bytes of data but it holds {actual}: {REPAIR_HINT}")
    return np.frombuffer(data, dtype=np.uint8, count=expected, offset=header_size).reshape(shape)


def read_idx(path: Path, *, magic: int) -> np.ndarray:
    """Read one IDX file (plain or gzip-compressed, detected by signature) and return its uint8 array.

    The header comes first, and the data are read (decompressed) only up to the size it announces,
    plus :data:`EXTRA_BYTES_READ` to tell a file with a few bytes too many: a small gzip file that
    inflates to gigabytes is refused after reading what its header promised, and a header that
    promises more than this machine's memory is refused before any data are read.
    """
    with _stream(path) as stream:
        data = _read(stream, 4, path)
        if len(data) == 4:
            _check_magic(data, path, magic)
            header_size = 4 + 4 * data[3]
            data += _read(stream, header_size - 4, path)
            if len(data) == header_size:
                dims = struct.unpack(f">{data[3]}I", data[4:])
                shape, expected = "x".join(map(str, dims)), math.prod(dims)
                check_memory(LOADED_COPIES * expected, f"{path}, whose header announces {shape} = {expected} bytes "
                             "of data, with their float32 copies,", REPAIR_HINT, error=DataError)
                data += _read(stream, expected + EXTRA_BYTES_READ + 1, path)
                if len(data) > header_size + expected + EXTRA_BYTES_READ:
                    raise DataError(f"{path} holds more than {EXTRA_BYTES_READ} bytes beyond the {expected} bytes of "
                                    f"data its header announces ({shape}): {REPAIR_HINT}")
    return parse_idx(data, path, magic=magic)


def _check_magic(data: bytes, path: Path, magic: int) -> None:
    """The first four bytes must be ``magic``: two zero bytes, the unsigned-byte type code, the rank."""
    kind = "image" if magic == IMAGES_MAGIC else "label"
    found = int.from_bytes(data[:4], "big")
    if data[:2] != b"\x00\x00" or (data[2] == UNSIGNED_BYTE and data[3] != magic & 0xFF):
        raise DataError(f"{path} has IDX magic number 0x{found:08x} but IDX {kind} files start with "
                        f"0x{magic:08x}, so it is damaged or not a {kind} file: {REPAIR_HINT}")
    if data[2] != UNSIGNED_BYTE:
        raise DataError(f"{path} has IDX data type code 0x{data[2]:02x} but {kind}s must be unsigned "
                        f"bytes (0x{UNSIGNED_BYTE:02x}): {REPAIR_HINT}")


@contextlib.contextmanager
def _stream(path: Path):
    """The file's bytes as a stream, decompressed when it is gzip data (detected by its signature)."""
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise DataError(f"cannot read {path} ({exc.strerror or exc}): check its permissions, "
                        "or pass --data-dir DIR") from exc
    with handle:
        if handle.read(len(GZIP_SIGNATURE)) == GZIP_SIGNATURE:
            handle.seek(0)
            with gzip.GzipFile(fileobj=handle, mode="rb") as stream:
                yield stream
            return
        if path.suffix == ".gz":
            raise DataError(f"{path} is not a valid gzip file (it lacks the gzip signature): {REPAIR_HINT}")
        handle.seek(0)
        yield handle


def _read(stream, size: int, path: Path) -> bytes:
    """Up to ``size`` bytes (fewer at the end of the file), read in chunks, so that memory follows what
    the file holds rather than what its header claims; damaged gzip data is a :class:`DataError`."""
    parts = []
    try:
        while size > 0:
            part = stream.read(min(size, READ_CHUNK))
            if not part:
                break
            parts.append(part)
            size -= len(part)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path} is not a valid gzip file ({exc}): {REPAIR_HINT}") from exc
    return b"".join(parts)


def read_images_and_labels(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a matching pair of IDX files: uint8 images ``(N, H, W)`` and int64 labels ``(N,)``."""
    images = read_idx(images_path, magic=IMAGES_MAGIC)
    labels = read_idx(labels_path, magic=LABELS_MAGIC).astype(np.int64)
    if len(images) != len(labels):
        raise DataError(f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} "
                        f"labels; one of them is damaged or from another data set: {REPAIR_HINT}")
    if len(images) == 0:
        raise DataError(f"{images_path} holds no images: {REPAIR_HINT}")
    return images, labels
