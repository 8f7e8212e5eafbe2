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
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cnnviz.errors import CnnvizError

MAX_UPLOAD_BYTES: int = 20 * 1024 * 1024
MAX_PIXELS: int = 40_000_000
INPUT_SIZE: int = 64

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


def read_image(source: str | os.PathLike | bytes | bytearray | BinaryIO) -> Image.Image:
    """Decode an upload into an upright RGB image at full resolution (the UI shows it as the original).

    ``bytes``/``bytearray`` are file contents, ``str``/``PathLike`` are paths, anything with ``read`` is a
    binary file object. Raises ``ImageError`` for every problem with the file itself.
    """
    data = _read_capped(source)
    with warnings.catch_warnings(), _decoding_failures_as_image_error():
        # Pillow only warns between its own limit and twice that; here a bomb is always an error.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as image:  # reads the header only
            _check_pixel_count(image.size)
            if ycbcr := _uncompressed_ycbcr_tiff(image, data):
                return ycbcr.convert("RGB")
            image.load()
            return _flatten_to_rgb(_upright(image))


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


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation (phones store photos sideways).

    A broken EXIF block is only metadata, so it should not make an otherwise readable photo unusable.
    """
    try:
        return ImageOps.exif_transpose(image)
    except (SyntaxError, ValueError, TypeError, LookupError, OSError, struct.error):
        return image.copy()


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
    """Scale 16-bit, 32-bit and float greys to 8 bits ourselves: Pillow's convert clips them at 255 instead."""
    values = np.asarray(image).astype(np.float64)
    low, high = _intensity_range(image.mode, values)
    scaled = (np.nan_to_num(values, nan=low, posinf=high, neginf=low) - low) / max(high - low, 1e-12)
    grey = Image.fromarray(np.rint(np.clip(scaled, 0.0, 1.0) * 255).astype(np.uint8))
    transparent_value = image.info.get("transparency")
    if not isinstance(transparent_value, int):
        return grey
    alpha = np.where(values == transparent_value, 0, 255).astype(np.uint8)
    return Image.merge("LA", (grey, Image.fromarray(alpha)))


def _intensity_range(mode: str, values: np.ndarray) -> tuple[float, float]:
    """Guess the black and white levels: 16-bit modes say so; otherwise the common ranges, else stretch."""
    if mode.startswith("I;16"):
        return 0.0, _SIXTEEN_BIT_FULL_SCALE
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    if low < 0:
        return low, high
    if mode == "F" and high <= 1:
        return 0.0, 1.0
    if high <= 255:
        return 0.0, 255.0
    if high <= _SIXTEEN_BIT_FULL_SCALE:
        return 0.0, _SIXTEEN_BIT_FULL_SCALE
    return low, high
