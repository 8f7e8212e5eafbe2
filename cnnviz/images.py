"""Turn whatever a student uploads into the 64×64 RGB array the Tiny VGG reads.

Uploads are untrusted: every problem a file can cause surfaces as an ``ImageError`` whose message is a
plain sentence the UI can show as is, and size limits are enforced before any pixel is decoded.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from cnnviz.errors import CnnvizError

MAX_UPLOAD_BYTES: int = 20 * 1024 * 1024
MAX_PIXELS: int = 40_000_000
INPUT_SIZE: int = 64
LUMINANCE = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601 weights, as Pillow's RGB → L
# An upload is kept no bigger than this (a 40-megapixel photo would hold 120 MB per session), and decoded no
# bigger than needed for it: JPEG decodes at 1/2, 1/4 or 1/8 scale, other formats shrink right after decoding.
ORIGINAL_KEPT_SIZE: int = 512
# Numeric (16-bit, 32-bit, float) images are scaled to 8 bits this many rows at a time, so a 40-megapixel
# 16-bit picture needs a few MB of floats on top of its pixels, not 1.5 GB.
_ROWS_PER_STRIP = 256

_MEGABYTE = 1024 * 1024
ACCEPTED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")  # JPEG also covers MPO (phone photos)
_ACCEPTED_NAMES = "JPEG, PNG, GIF, WebP, BMP, TIFF"
_NOT_AN_IMAGE = f"This file is not an image cnnviz can read (accepted: {_ACCEPTED_NAMES})."
_DAMAGED = (
    "The image file is cut off or damaged, so cnnviz cannot read it. "
    "Try opening it in an image viewer and saving it again."
)
_TOO_LARGE_TO_DECODE = f"This image is too large to open safely; the limit is {MAX_PIXELS // 1_000_000} megapixels."
# Pillow's decoders signal malformed input with a wide, loosely documented range of exceptions.
_DECODING_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    TypeError,
    LookupError,
    ArithmeticError,
    EOFError,
    struct.error,
)
_SIXTEEN_BIT_FULL_SCALE = 65535.0


class ImageError(CnnvizError, ValueError):
    """A user-facing message: why this file can't be used (no traceback, plain text)."""


def read_image(source: str | os.PathLike | bytes | bytearray | BinaryIO, *, at_least: int | None = None) -> Image.Image:
    """Decode an upload into an upright RGB image (the UI shows it as the original).

    ``bytes``/``bytearray`` are file contents, ``str``/``PathLike`` are paths, anything with ``read`` is a
    binary file object. Raises ``ImageError`` for every problem with the file itself.

    Full resolution by default. With ``at_least``, the image may come back smaller, but with its short side
    still at least ``at_least`` pixels (or its own size): the decoder works at reduced scale where the format
    allows, and the full-size pixels are dropped as soon as they are shrunk, which bounds time and memory.
    """
    data = _read_capped(source)
    with warnings.catch_warnings(), _decoding_failures_as_image_error():
        # Pillow only warns between its own limit and twice that; here a bomb is always an error.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as image:  # reads the header only
            _check_pixel_count(image.size)
            ycbcr = _uncompressed_ycbcr_tiff(image, data)
            if ycbcr is None:
                if at_least:
                    image.draft(None, (at_least, at_least))  # JPEG: decode at the smallest scale big enough
                image.load()
            pixels = image if ycbcr is None else ycbcr.convert("RGB")
            turn = _orientation(image)
            shrunk = _shrunk(pixels, at_least) if at_least else pixels
            rgb = _flatten_to_rgb(shrunk.transpose(turn) if turn is not None else shrunk)
            return rgb.copy() if rgb is image else rgb  # the file's own image closes with the `with`


@dataclass(frozen=True, eq=False)
class PreparedUpload:
    """What a session keeps of an upload: the network input and a preview-sized picture."""

    image: np.ndarray  # the network input (its size and channels), float32 in [0, 1], read-only
    original: Image.Image  # at most ORIGINAL_KEPT_SIZE on its long side


def prepare_upload(
    content: bytes, input_shape: tuple[int, ...] = (INPUT_SIZE, INPUT_SIZE, 3), kept: int = ORIGINAL_KEPT_SIZE
) -> PreparedUpload:
    """Decode an upload at the size the session needs (thread-safe: servers run it off their event loop)."""
    original = read_image(content, at_least=max(kept, input_shape[0]))
    image = fit_to_network(original, input_shape)
    image.flags.writeable = False
    original.thumbnail((kept, kept))
    return PreparedUpload(image, original)


def _uncompressed_ycbcr_tiff(image: Image.Image, data: bytes) -> Image.Image | None:
    """Read an uncompressed 8-bit YCbCr TIFF ourselves: Pillow 11 (the browser's) reads its pixels as 4-byte RGBX,
    runs out of data and calls the file truncated. None for every other file."""
    tags = getattr(image, "tag_v2", {})
    layout = (tags.get(262), tags.get(259, 1), tags.get(277), tags.get(284, 1), tuple(tags.get(258, ())))
    if image.format != "TIFF" or layout != (6, 1, 3, 1, (8, 8, 8)) or tuple(tags.get(530, (2, 2))) != (1, 1):
        return None  # not YCbCr, compressed, planar, not 8 bits per sample, or subsampled: Pillow's own path
    strips = b"".join(data[offset : offset + count] for offset, count in zip(tags[273], tags[279], strict=True))
    if len(strips) < 3 * image.width * image.height:
        raise ImageError(_DAMAGED)
    return Image.frombytes("YCbCr", image.size, strips[: 3 * image.width * image.height])


def fit_to_network(picture: Image.Image, input_shape: tuple[int, ...]) -> np.ndarray:
    """A decoded picture as the network's input: centre square at its size, grey if it reads one channel."""
    rgb = to_network_input(picture, input_shape[0])
    return rgb @ LUMINANCE[:, np.newaxis] if input_shape[2] == 1 else rgb


def to_network_input(image: Image.Image, size: int = INPUT_SIZE) -> np.ndarray:
    """Scale so the short side is ``size`` and cut out the exact centre square, as float32 in [0, 1].

    Resampling only the centre box of the source avoids building a huge intermediate for long strips,
    and a fractional box keeps the crop centred even when the margins are an odd number of pixels.
    """
    if size < 1:
        raise ValueError(f"size must be at least 1, not {size}")
    rgb = _flatten_to_rgb(image)
    width, height = rgb.size
    if width == 0 or height == 0:
        raise ImageError(f"This image has no pixels ({width} × {height}).")
    side = min(width, height)
    left = (width - side) / 2
    top = (height - side) / 2
    square = rgb.resize(
        (size, size),
        Image.Resampling.LANCZOS,
        box=(left, top, left + side, top + side),
        reducing_gap=3.0,
    )
    return np.asarray(square, dtype=np.float32) / np.float32(255)


def load_image(source: str | os.PathLike | bytes | bytearray | BinaryIO, size: int = INPUT_SIZE) -> np.ndarray:
    """Read an upload and prepare it for the network in one step."""
    return to_network_input(read_image(source), size)


def array_to_image(array: np.ndarray) -> Image.Image:
    """Show a network-input array as a picture: float (H, W, 3) or grey (H, W, 1) in [0, 1] → 8-bit RGB image."""
    if array.ndim != 3 or array.shape[2] not in (1, 3):
        raise ValueError(f"expected an (H, W, 3) or (H, W, 1) array, got shape {array.shape}")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    scaled = np.rint(np.clip(np.nan_to_num(array, nan=0.0), 0.0, 1.0) * 255)
    return Image.fromarray(scaled.astype(np.uint8))


def _read_capped(source: str | os.PathLike | bytes | bytearray | BinaryIO) -> bytes:
    """Get the file's bytes without ever holding more than the upload limit (plus one byte) in memory."""
    if isinstance(source, bytes | bytearray):
        check_upload_size(len(source))
        data = bytes(source)
    elif isinstance(source, str | os.PathLike):
        data = _read_path(source)
    elif hasattr(source, "read"):
        data = _read_stream(source)
    else:
        raise TypeError(f"expected bytes, a path or a binary file object, not {type(source).__name__}")
    if not data:
        raise ImageError(f"The file is empty. Please choose an image ({_ACCEPTED_NAMES}).")
    return data


def _read_path(path: str | os.PathLike) -> bytes:
    """Read a file from disk, turning the ways a path can be wrong into sentences."""
    shown = os.fsdecode(path)
    try:
        status = os.stat(path)
    except OSError as error:
        raise _path_error(shown, error) from None
    except ValueError:
        raise ImageError(f"{shown!r} is not a valid file path.") from None
    if stat.S_ISDIR(status.st_mode):
        raise ImageError(f"{shown} is a folder, not an image file.")
    check_upload_size(status.st_size)
    try:
        with open(path, "rb") as stream:
            return _read_stream(stream)
    except OSError as error:
        raise _path_error(shown, error) from None


def _path_error(shown: str, error: OSError) -> ImageError:
    if isinstance(error, FileNotFoundError):
        return ImageError(f"There is no file at {shown}.")
    if isinstance(error, IsADirectoryError):
        return ImageError(f"{shown} is a folder, not an image file.")
    if isinstance(error, PermissionError):
        return ImageError(f"cnnviz is not allowed to read {shown}.")
    return ImageError(f"cnnviz could not read {shown}: {error.strerror or error}.")


def _read_stream(stream: BinaryIO) -> bytes:
    """Read at most one byte past the limit, looping because raw streams may return short reads."""
    chunks: list[bytes] = []
    total = 0
    try:
        while total <= MAX_UPLOAD_BYTES:
            chunk = stream.read(MAX_UPLOAD_BYTES + 1 - total)
            if not chunk:
                break
            if isinstance(chunk, str):
                raise TypeError("the file object must be opened in binary mode ('rb')")
            chunks.append(chunk)
            total += len(chunk)
    except OSError as error:
        raise ImageError(f"cnnviz could not read the file: {error.strerror or error}.") from None
    if total > MAX_UPLOAD_BYTES:
        limit = MAX_UPLOAD_BYTES // _MEGABYTE
        raise ImageError(f"The file is over {limit} MB; the limit is {limit} MB.")
    return b"".join(chunks)


def check_upload_size(count: int, limit: int = MAX_UPLOAD_BYTES) -> None:
    """Refuse a file by its size alone, before any of it is read or decoded (also used by the upload control)."""
    if count > limit:
        raise ImageError(f"The file is {count / _MEGABYTE:.1f} MB; the limit is {limit // _MEGABYTE} MB.")


@contextlib.contextmanager
def _decoding_failures_as_image_error() -> Iterator[None]:
    """Translate whatever Pillow raises on a hostile or broken file into a sentence for the student."""
    try:
        yield
    except ImageError:
        raise
    except UnidentifiedImageError as error:  # an OSError, so it must come first
        raise ImageError(_NOT_AN_IMAGE) from error
    except (Image.DecompressionBombError, Image.DecompressionBombWarning, MemoryError) as error:
        raise ImageError(_TOO_LARGE_TO_DECODE) from error
    except _DECODING_ERRORS as error:
        raise ImageError(_DAMAGED) from error


def _check_pixel_count(size: tuple[int, int]) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageError(f"This image has no pixels ({width} × {height}).")
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"This image is {width} × {height} pixels ({_megapixels(width * height)} megapixels); "
            f"the limit is {_megapixels(MAX_PIXELS)} megapixels."
        )


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1_000_000:.1f}".removesuffix(".0")


_EXIF_ORIENTATION = 0x0112
_TURNS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _orientation(image: Image.Image) -> Image.Transpose | None:
    """The turn that shows the photo upright, from its EXIF orientation (phones store photos sideways).

    Read before any shrinking, which drops the metadata. A broken EXIF block is only metadata, so it should
    not make an otherwise readable photo unusable.
    """
    try:
        return _TURNS.get(image.getexif().get(_EXIF_ORIENTATION))
    except (SyntaxError, ValueError, TypeError, LookupError, OSError, struct.error):
        return None


def _shrunk(image: Image.Image, at_least: int) -> Image.Image:
    """Average whole blocks of pixels so the short side stays at least `at_least` (Pillow's own resize does
    the same first step); modes that cannot be block-averaged are converted first."""
    factor = min(image.size) // at_least
    if factor < 2:
        return image
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        image = _numeric_to_8bit_grey(image)
    elif image.mode in ("P", "PA", "1"):
        image = image.convert("RGBA" if image.has_transparency_data else "RGB")
    return image.reduce(factor)


def _flatten_to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB, painting transparent areas white as a browser shows them on a page."""
    if image.mode == "RGB" and not image.has_transparency_data:
        return image
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        image = _numeric_to_8bit_grey(image)
    if image.has_transparency_data:
        # Premultiplied greys ("La") only convert via "LA".
        rgba = (image.convert("LA") if image.mode == "La" else image).convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _numeric_to_8bit_grey(image: Image.Image) -> Image.Image:
    """Scale 16-bit, 32-bit and float greys to 8 bits ourselves: Pillow's convert clips them at 255 instead.

    Works a strip of rows at a time, so the floats never cost more than a strip (a 40-megapixel 16-bit image
    held as float64 would take 320 MB per copy).
    """
    width, height = image.size
    strips = [(top, min(top + _ROWS_PER_STRIP, height)) for top in range(0, height, _ROWS_PER_STRIP)]
    rows = [lambda top=top, bottom=bottom: np.asarray(image.crop((0, top, width, bottom))) for top, bottom in strips]
    low, high = _intensity_range(image.mode, rows)
    transparent_value = image.info.get("transparency")
    keyed = isinstance(transparent_value, int)
    grey = np.empty((height, width), np.uint8)
    alpha = np.empty((height, width), np.uint8) if keyed else None
    for (top, bottom), read in zip(strips, rows, strict=True):
        values = read().astype(np.float64)
        scaled = (np.nan_to_num(values, nan=low, posinf=high, neginf=low) - low) / max(high - low, 1e-12)
        grey[top:bottom] = np.rint(np.clip(scaled, 0.0, 1.0) * 255)
        if alpha is not None:
            alpha[top:bottom] = np.where(values == transparent_value, 0, 255)
    if alpha is None:
        return Image.fromarray(grey)
    return Image.merge("LA", (Image.fromarray(grey), Image.fromarray(alpha)))


def _intensity_range(mode: str, strips: list) -> tuple[float, float]:
    """Guess the black and white levels: 16-bit modes say so; otherwise the common ranges, else stretch.

    `strips` are callables that each return one strip of the pixel values (read only when needed).
    """
    if mode.startswith("I;16"):
        return 0.0, _SIXTEEN_BIT_FULL_SCALE
    lows, highs = [], []
    for read in strips:
        values = read()
        finite = values[np.isfinite(values)]
        if finite.size:
            lows.append(float(finite.min()))
            highs.append(float(finite.max()))
    if not lows:
        return 0.0, 1.0
    low, high = min(lows), max(highs)
    if low < 0:
        return low, high
    if mode == "F" and high <= 1:
        return 0.0, 1.0
    if high <= 255:
        return 0.0, 255.0
    if high <= _SIXTEEN_BIT_FULL_SCALE:
        return 0.0, _SIXTEEN_BIT_FULL_SCALE
    return low, high
