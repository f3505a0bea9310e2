"""Images in and out of the explorer: decoded arrays to PNG data URLs, uploads to model inputs, and
for table runs a small bar-chart picture of a row (:func:`feature_glyph`), shown where images go.

Uploads are untrusted bytes. They are checked in this order, each failure a :class:`BadInput` with
the HTTP status to answer: size (at most :data:`MAX_UPLOAD_BYTES`), pixel count (at most
:data:`MAX_UPLOAD_PIXELS`, read from the PNG or JPEG header by :func:`declared_size` before Pillow
sees the file, so a small file cannot expand into gigabytes), format (PNG or JPEG, by their content,
not their name), then the pixel data itself. The pixel limit is this module's own: Pillow's global
``Image.MAX_IMAGE_PIXELS`` is left as it is (its bomb error is still caught, as a second line).
"""
from __future__ import annotations

import base64
import io
import math
import struct

import numpy as np

from vaekit.data.folder import read_pixels
from vaekit.errors import VaekitError

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_UPLOAD_PIXELS = 40_000_000          # 40 megapixels: far above any photo worth encoding
UPLOAD_FORMATS = {"PNG": "PNG", "JPEG": "JPEG"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG markers that start a frame header (SOF0-SOF15) and carry the image size; C4, C8 and CC are
# other segments in the same range (ITU T.81, table B.1).
JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
JPEG_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD9)})     # TEM, RST0-7, SOI: no length field


class BadInput(VaekitError):
    """A request the explorer refuses; ``status`` is the HTTP status code to answer with."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


def image_view(image: np.ndarray) -> np.ndarray:
    """A data sample as something a PNG can hold: (H, W) grey or (H, W, 3) colour, uint8.

    Samples are channels-first images (C, H, W) or flat vectors (D,); a flat vector is shown as a
    square when D is a perfect square and as one row of pixels otherwise.
    """
    image = np.asarray(image, np.float32)
    if image.ndim == 3:
        image = image[0] if image.shape[0] != 3 else image.transpose(1, 2, 0)
    elif image.ndim == 1:
        side = math.isqrt(image.size)
        image = image.reshape(side, side) if side * side == image.size else image[None, :]
    return np.rint(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)


GLYPH_LIMIT = 3.0                  # bars reach the edge at +-3 training sd
GLYPH_UP, GLYPH_DOWN, GLYPH_AXIS = (0.84, 0.19, 0.15), (0.19, 0.40, 0.75), 0.62


def feature_glyph(row: np.ndarray, *, bar: int = 3, gap: int = 1) -> np.ndarray:
    """A table row, standardised, as a small square picture (3, H, W) in [0, 1]: one bar per feature,
    left to right in column order, red and up above the training mean, blue and down below it,
    as long as its standardised value (clipped at +-GLYPH_LIMIT sd), on a grey zero line.

    It stands in for the image wherever the explorer shows samples small (the map's tooltip, the
    interpolation strip, samples); the page lists the values themselves beside it.
    """
    row = np.clip(np.asarray(row, np.float64).reshape(-1), -GLYPH_LIMIT, GLYPH_LIMIT)
    width = row.size * (bar + gap) + gap
    height = max(25, width | 1)                    # odd: one middle row for the zero line
    middle = height // 2
    canvas = np.ones((3, height, width), np.float32)
    canvas[:, middle, :] = GLYPH_AXIS
    for i, value in enumerate(row):
        length = int(round(abs(value) / GLYPH_LIMIT * middle))
        left = gap + i * (bar + gap)
        rows = slice(middle - length, middle) if value > 0 else slice(middle + 1, middle + 1 + length)
        colour = GLYPH_UP if value > 0 else GLYPH_DOWN
        canvas[:, rows, left:left + bar] = np.asarray(colour, np.float32)[:, None, None]
    return canvas


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    # Level 1: these images are tiny, and the decode endpoint is on the live path.
    Image.fromarray(image_view(image)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def png_data_url(image: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


def declared_size(data: bytes) -> tuple[str, int, int] | None:
    """``(format, width, height)`` as a PNG's IHDR chunk or a JPEG's frame header declares them, read
    from the bytes without decoding anything; None when the data are neither (or too damaged to say)."""
    if data.startswith(PNG_SIGNATURE) and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])          # PNG spec, 11.2.2: IHDR comes first
        return "PNG", width, height
    if not data.startswith(b"\xff\xd8"):
        return None
    position = 2
    while position + 4 <= len(data):       # the segments before the first scan (ITU T.81, B.2)
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:                  # a fill byte
            position += 1
            continue
        if marker in JPEG_STANDALONE_MARKERS:
            position += 2
            continue
        if marker in JPEG_FRAME_MARKERS:
            if position + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[position + 5:position + 9])
            return "JPEG", width, height
        if marker in (0xD9, 0xDA):          # the end, or a scan before any frame header
            return None
        position += 2 + int.from_bytes(data[position + 2:position + 4], "big")
    return None


def read_upload(data: bytes, sample_shape: tuple[int, ...], *, invert: bool = False) -> np.ndarray:
    """An uploaded PNG/JPEG as one float32 sample in [0, 1] shaped ``sample_shape`` (resized bilinearly).

    ``invert`` flips grey levels (1 - x): for photos of dark objects on a light background, when the
    model was trained on light objects on black (MNIST, Fashion-MNIST).
    """
    from PIL import Image, UnidentifiedImageError

    if len(sample_shape) != 3 or sample_shape[0] not in (1, 3):
        raise BadInput(f"this run's samples are vectors of shape {tuple(sample_shape)}, not images: "
                       "uploads need a run trained on images", 409)
    if not data:
        raise BadInput("the uploaded file is empty: choose a PNG or JPEG image")
    if len(data) > MAX_UPLOAD_BYTES:
        raise BadInput(f"the upload is {len(data) / 2**20:.1f} MB: the limit is {MAX_UPLOAD_BYTES // 2**20} MB", 413)
    declared = declared_size(data)
    if declared is not None:
        _check_pixels(*declared[1:])
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind, (width, height) = image.format, image.size
    except Image.DecompressionBombError:        # beyond Pillow's own limit, where our header reading failed
        raise BadInput(f"the image has too many pixels: at most {MAX_UPLOAD_PIXELS // 10**6} megapixels "
                       "are accepted", 413) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise BadInput("the upload is not an image: choose a PNG or JPEG file", 415) from None
    if kind not in UPLOAD_FORMATS:
        raise BadInput(f"the upload is a {kind} image: only PNG and JPEG are accepted", 415)
    _check_pixels(width, height)
    channels, rows, cols = sample_shape
    try:
        pixels = read_pixels(io.BytesIO(data), channels, (cols, rows))
    except Exception:  # noqa: BLE001 - Pillow raises many types for damaged pixel data
        raise BadInput(f"the {kind} image's pixel data are damaged or truncated: choose another file", 415) from None
    sample = pixels.astype(np.float32) / np.float32(255)
    return 1.0 - sample if invert else sample


def _check_pixels(width: int, height: int) -> None:
    if width * height > MAX_UPLOAD_PIXELS:
        raise BadInput(f"the image is {width}x{height} pixels: at most {MAX_UPLOAD_PIXELS // 10**6} megapixels "
                       "are accepted", 413)
