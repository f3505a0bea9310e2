"""What an ``.npy`` file, or an ``.npz`` archive's members, announce in their headers, checked before loading.

NumPy allocates the whole array its header announces before reading any data, so a 192-byte file
whose header claims a shape of 373 GiB fails inside ``np.load`` with a ``MemoryError`` (or worse, is
allowed by the kernel and then fills the machine). Here the header alone is read (NPY format,
https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html) and the array it announces is
refused when the file does not hold that many bytes, or when loading it would need more memory than
the machine has. Anything else about the file is left to ``np.load`` and its messages.
"""
from __future__ import annotations

import math
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.lib import format as npy_format

from vaekit.errors import DataError
from vaekit.limits import check_memory, size_text

ARRAY_MEMBERS = ("x", "y")          # the arrays of an .npz that vaekit reads
FLOAT_COPIES = 2                    # loading keeps the array, its float32 values and their split copies


def check_array_file(path: Path) -> None:
    """Refuse (:class:`DataError`) an ``.npy``/``.npz`` whose announced arrays are not in the file or
    cannot fit in memory, or whose header or archive is damaged. Members that are not NPY data are
    left to the loader, which names them."""
    try:
        if path.suffix.lower() == ".npy":
            with open(path, "rb") as handle:
                _check_member(handle, path.stat().st_size, path.name, path)
            return
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            for key in ARRAY_MEMBERS:
                name = next((candidate for candidate in (f"{key}.npy", key) if candidate in names), None)
                if name is not None:
                    info = archive.getinfo(name)
                    with archive.open(info) as member:
                        _check_member(member, info.file_size, f"{path.name}['{key}']", path)
    except DataError:
        raise
    except (OSError, EOFError, ValueError, SyntaxError, tokenize.TokenError, zipfile.BadZipFile, zlib.error,
            NotImplementedError) as exc:
        # A damaged archive, or a header NumPy's reader cannot parse: it raises SyntaxError or, from
        # the tokenizer it falls back to for old headers, TokenError (found by test_loader_properties).
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise DataError(f"{path} is damaged or not a valid NumPy file ({reason}): save it again") from None


def _check_member(handle: BinaryIO, file_size: int, label: str, path: Path) -> None:
    magic = handle.read(npy_format.MAGIC_LEN)          # b"\x93NUMPY", then the major and minor version
    if len(magic) < npy_format.MAGIC_LEN or not magic.startswith(npy_format.MAGIC_PREFIX):
        return
    version = (magic[-2], magic[-1])
    read_header = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
    shape, _, dtype = read_header(handle)
    if dtype.hasobject:
        return      # refused by np.load (allow_pickle=False) with its own message
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    held = file_size - handle.tell()
    described = f"shape {tuple(shape)} of {dtype} ({size_text(nbytes)})"
    if nbytes > held:
        raise DataError(f"{path} is truncated or damaged: the header of {label} announces an array of {described} "
                        f"but the file holds {size_text(max(held, 0))} of data: save it again with np.save / np.savez")
    check_memory(nbytes + FLOAT_COPIES * count * np.dtype(np.float32).itemsize,
                 f"loading {label} (an array of {described}) with its float32 copies",
                 "use a smaller sample of the data, or save the images in a folder, which vaekit can stream "
                 "from disk (--stream)", error=DataError)
