"""Every kind of file a student might upload either becomes a valid network input or a plain ImageError.

The corpus is generated here, so no binary fixtures live in the repository.
"""

from __future__ import annotations

import functools
import io
import os
import pathlib
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image

from cnnviz.images import (
    INPUT_SIZE,
    MAX_UPLOAD_BYTES,
    ImageError,
    array_to_image,
    load_image,
    read_image,
    to_network_input,
)

RED, GREEN, BLUE, WHITE, BLACK = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0)
NOT_AN_IMAGE = r"not an image cnnviz can read \(accepted: JPEG, PNG, GIF, WebP, BMP, TIFF\)"
DAMAGED = r"cut off or damaged"
TOO_LARGE = r"too large to open safely; the limit is 40 megapixels"
THIRTY_MB = 30 * 1024 * 1024

Source = object  # whatever read_image accepts
Check = Callable[[Image.Image, np.ndarray], None]


# --- building files ---------------------------------------------------------------------------------------


def encode(image: Image.Image, image_format: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **params)
    return buffer.getvalue()


def solid(colour: tuple[int, ...] | int | float, mode: str = "RGB", size: tuple[int, int] = (24, 16)) -> Image.Image:
    return Image.new(mode, size, colour)


def halves(left: tuple[int, int, int], right: tuple[int, int, int], size: tuple[int, int] = (32, 32)) -> Image.Image:
    image = Image.new("RGB", size, left)
    image.paste(right, (size[0] // 2, 0, size[0], size[1]))
    return image


def thirds(size: tuple[int, int], along_width: bool) -> Image.Image:
    """Red, green, blue bands across the long side: the centre crop must see only green."""
    width, height = size
    pixels = np.zeros((height, width, 3), np.uint8)
    length = width if along_width else height
    for channel in range(3):
        start, stop = channel * length // 3, (channel + 1) * length // 3
        if along_width:
            pixels[:, start:stop, channel] = 255
        else:
            pixels[start:stop, :, channel] = 255
    return Image.fromarray(pixels)


def quadrants(size: tuple[int, int] = (96, 64)) -> Image.Image:
    """How a photo should look once upright: red top-left, green top-right, blue bottom-left, white bottom-right."""
    width, height = size
    image = Image.new("RGB", size, RED)
    image.paste(GREEN, (width // 2, 0, width, height // 2))
    image.paste(BLUE, (0, height // 2, width // 2, height))
    image.paste(WHITE, (width // 2, height // 2, width, height))
    return image


# How a camera stores an upright scene for each EXIF orientation, written from the EXIF spec (what the
# viewer must do to show it) rather than from Pillow, so the test does not just mirror exif_transpose.
STORED_FOR_ORIENTATION = {
    1: lambda upright: upright,
    2: lambda upright: upright.transpose(Image.Transpose.FLIP_LEFT_RIGHT),  # viewer mirrors
    3: lambda upright: upright.transpose(Image.Transpose.ROTATE_180),  # viewer turns 180°
    4: lambda upright: upright.transpose(Image.Transpose.FLIP_TOP_BOTTOM),  # viewer flips vertically
    5: lambda upright: upright.transpose(Image.Transpose.TRANSPOSE),  # viewer mirrors, turns 90° CCW
    6: lambda upright: upright.transpose(Image.Transpose.ROTATE_90),  # viewer turns 90° clockwise
    7: lambda upright: upright.transpose(Image.Transpose.TRANSVERSE),  # viewer mirrors, turns 90° CW
    8: lambda upright: upright.transpose(Image.Transpose.ROTATE_270),  # viewer turns 90° counter-clockwise
}


def exif_rotated_jpeg(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored = STORED_FOR_ORIENTATION[orientation](quadrants())
    return encode(stored, "JPEG", quality=95, exif=exif.tobytes())


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def handmade_png(width: int, height: int, bit_depth: int, colour_type: int, row: bytes, extra: bytes = b"") -> bytes:
    """A PNG whose every row is ``row``; streams the compression so huge declared sizes stay cheap."""
    compressor = zlib.compressobj(9)
    filtered_rows = (b"\0" + row) * min(height, 1000)
    parts = [compressor.compress(filtered_rows) for _ in range(height // 1000)]
    parts.append(compressor.compress((b"\0" + row) * (height % 1000)))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + extra
        + png_chunk(b"IDAT", b"".join(parts))
        + png_chunk(b"IEND", b"")
    )


@functools.cache
def one_bit_bomb() -> bytes:
    """20000 × 20000 black pixels (400 megapixels) in about 50 kB."""
    return handmade_png(20000, 20000, 1, 0, bytes(2500))


def png_header_only(width: int, height: int) -> bytes:
    """Declares a size but carries almost no pixel data: enough to exercise the checks done before decoding."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(bytes(64)))


def huge_gif_header() -> bytes:
    screen = struct.pack("<HHBBB", 65535, 65535, 0, 0, 0)
    descriptor = b"," + struct.pack("<HHHHB", 0, 0, 65535, 65535, 0)
    return b"GIF89a" + screen + descriptor + b"\x02\x02\x44\x01\x00;"


def sixteen_bit_grey(value: int, image_format: str = "PNG", dtype: str = "<u2") -> bytes:
    return encode(Image.fromarray(np.full((16, 16), value, dtype=dtype)), image_format)


def animated_gif() -> bytes:
    frames = [solid(colour) for colour in (RED, GREEN, BLUE)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def transparent_gif() -> bytes:
    image = Image.new("P", (32, 32), 0)
    image.putpalette([255, 0, 0, 0, 0, 255])
    image.paste(1, (16, 0, 32, 32))
    return encode(image, "GIF", transparency=0)


def palette_png_with_transparency() -> bytes:
    image = Image.new("P", (32, 32), 0)
    image.putpalette([0, 0, 0, 0, 0, 255])
    image.paste(1, (16, 0, 32, 32))
    return encode(image, "PNG", transparency=0)


def half_transparent_rgba(image_format: str, **params: object) -> bytes:
    image = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    image.paste((255, 0, 0, 255), (16, 0, 32, 32))
    return encode(image, image_format, **params)


def multipage_tiff() -> bytes:
    return encode(solid(BLUE), "TIFF", save_all=True, append_images=[solid(RED), solid(GREEN)])


def mpo() -> bytes:
    return encode(solid(RED), "MPO", save_all=True, append_images=[solid(BLUE)])


def noise(size: tuple[int, int] = (96, 80), seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def random_bytes(count: int = 4096, prefix: bytes = b"") -> bytes:
    return prefix + np.random.default_rng(7).bytes(count)


def grey_columns(width: int, height: int, value_of_column: Callable[[int], int]) -> Image.Image:
    row = np.array([value_of_column(column) for column in range(width)], np.uint8)
    return Image.fromarray(np.repeat(np.tile(row, (height, 1))[:, :, None], 3, axis=2))


def distinct_columns() -> Image.Image:
    return grey_columns(66, 64, lambda column: 3 * column)


def symmetric_columns(width: int, height: int) -> Image.Image:
    centre = (width - 1) / 2
    return grey_columns(width, height, lambda column: int(abs(column - centre) * 7) % 256)


def sparse_file(path: pathlib.Path, size: int) -> pathlib.Path:
    with open(path, "wb") as file:
        file.truncate(size)
    return path


def written(path: pathlib.Path, data: bytes) -> pathlib.Path:
    path.write_bytes(data)
    return path


class OneChunkAtATime(io.RawIOBase):
    """A non-seekable stream that returns short reads, like a socket."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:
        count = min(len(buffer), 1000, len(self._data))
        buffer[:count] = self._data[:count]
        self._data = self._data[count:]
        return count


# --- expectations -----------------------------------------------------------------------------------------


def colour_everywhere(rgb: tuple[int, int, int], tolerance: float = 1 / 255) -> Check:
    def check(original: Image.Image, array: np.ndarray) -> None:
        np.testing.assert_allclose(array, np.broadcast_to(np.array(rgb) / 255, array.shape), atol=tolerance)

    return check


def left_and_right(left: tuple[int, int, int], right: tuple[int, int, int], tolerance: float = 1 / 255) -> Check:
    """Compare well inside each half, away from the resampling blur at the boundary."""

    def check(original: Image.Image, array: np.ndarray) -> None:
        np.testing.assert_allclose(array[:, :24], np.broadcast_to(np.array(left) / 255, (64, 24, 3)), atol=tolerance)
        np.testing.assert_allclose(array[:, 40:], np.broadcast_to(np.array(right) / 255, (64, 24, 3)), atol=tolerance)

    return check


def grey_level(level: float, tolerance: float = 1 / 255) -> Check:
    return colour_everywhere((round(level * 255),) * 3, tolerance)


def upright_quadrants(original: Image.Image, array: np.ndarray) -> None:
    assert original.size == (96, 64), "EXIF rotation must also swap width and height back"
    for (row, column), colour in {(12, 12): RED, (12, 52): GREEN, (52, 12): BLUE, (52, 52): WHITE}.items():
        np.testing.assert_allclose(array[row, column], np.array(colour) / 255, atol=0.1)


def original_size(size: tuple[int, int], then: Check) -> Check:
    def check(original: Image.Image, array: np.ndarray) -> None:
        assert original.size == size
        then(original, array)

    return check


def source_columns_one_to_sixty_four(original: Image.Image, array: np.ndarray) -> None:
    """66 wide, 64 tall: no scaling, so the exact centre is source columns 1..64 (one margin column each side)."""
    expected = np.arange(1, 65) * 3 / 255
    np.testing.assert_allclose(array[:, :, 0], np.tile(expected, (64, 1)), atol=1 / 255)


def source_rows_one_to_sixty_four(original: Image.Image, array: np.ndarray) -> None:
    expected = np.arange(1, 65) * 3 / 255
    np.testing.assert_allclose(array[:, :, 0], np.tile(expected[:, None], (1, 64)), atol=1 / 255)


def mirror_symmetric(axis: int) -> Check:
    """An off-by-one crop of a mirror-symmetric picture is visibly lopsided; the exact centre is not."""

    def check(original: Image.Image, array: np.ndarray) -> None:
        np.testing.assert_allclose(array, np.flip(array, axis=axis), atol=2 / 255)
        assert array.std() > 0.05, "the pattern must survive, or symmetry proves nothing"

    return check


def any_valid(original: Image.Image, array: np.ndarray) -> None:
    """Shape, type and range are checked for every success; nothing more is meaningful here."""


# --- the corpus -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[pathlib.Path], Source]
    check: Check | None = None
    error: str | None = None


def accepted(name: str, make: Callable[[pathlib.Path], Source], check: Check) -> Case:
    return Case(name, make, check=check)


def rejected(name: str, make: Callable[[pathlib.Path], Source], error: str) -> Case:
    return Case(name, make, error=error)


CORPUS = [
    # Not images, or not images we accept.
    rejected("empty-bytes", lambda _: b"", r"The file is empty"),
    rejected("random-bytes", lambda _: random_bytes(), NOT_AN_IMAGE),
    rejected("random-bytes-with-jpeg-magic", lambda _: random_bytes(prefix=b"\xff\xd8\xff\xe0"), DAMAGED),
    rejected("random-bytes-with-png-magic", lambda _: random_bytes(prefix=b"\x89PNG\r\n\x1a\n"), NOT_AN_IMAGE),
    rejected("png-signature-only", lambda _: b"\x89PNG\r\n\x1a\n", NOT_AN_IMAGE),
    rejected(
        "svg-text",
        lambda _: b'<svg xmlns="http://www.w3.org/2000/svg"><rect width="9" height="9"/></svg>',
        NOT_AN_IMAGE,
    ),
    rejected(
        "pdf-bytes", lambda _: b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<<>>\n%%EOF\n", NOT_AN_IMAGE
    ),
    rejected("html-text", lambda _: b"<!DOCTYPE html><html><body><img src='cat.jpg'></body></html>", NOT_AN_IMAGE),
    rejected("plain-text", lambda _: b"a cat, honestly", NOT_AN_IMAGE),
    rejected("ico", lambda _: encode(solid(RED, size=(32, 32)), "ICO"), NOT_AN_IMAGE),
    rejected("ppm-readable-by-pillow-but-not-accepted", lambda _: encode(solid(RED), "PPM"), NOT_AN_IMAGE),
    # Broken images.
    rejected("truncated-jpeg", lambda _: truncated(encode(noise(), "JPEG")), DAMAGED),
    rejected("truncated-png", lambda _: truncated(encode(noise(), "PNG")), DAMAGED),
    rejected("truncated-gif", lambda _: truncated(encode(noise().convert("P"), "GIF")), DAMAGED),
    rejected("truncated-webp", lambda _: truncated(encode(noise(), "WEBP")), DAMAGED),
    rejected("truncated-tiff", lambda _: truncated(encode(noise(), "TIFF")), DAMAGED),
    rejected("truncated-bmp", lambda _: truncated(encode(noise(), "BMP")), DAMAGED),
    rejected("zero-width-png", lambda _: png_header_only(0, 10), rf"{NOT_AN_IMAGE}|no pixels"),
    # Too big, judged before decoding.
    rejected("bomb-1-bit-png-20000x20000", lambda _: one_bit_bomb(), TOO_LARGE),
    rejected("bomb-png-10000x10000-in-pillows-warning-band", lambda _: png_header_only(10000, 10000), TOO_LARGE),
    rejected("bomb-gif-65535x65535", lambda _: huge_gif_header(), TOO_LARGE),
    rejected(
        "png-declaring-8000x6000",
        lambda _: png_header_only(8000, 6000),
        r"This image is 8000 × 6000 pixels \(48 megapixels\); the limit is 40 megapixels\.",
    ),
    rejected(
        "png-declaring-exactly-40-megapixels-passes-the-size-check", lambda _: png_header_only(8000, 5000), DAMAGED
    ),
    rejected("30-mb-bytes", lambda _: bytes(THIRTY_MB), r"The file is 30\.0 MB; the limit is 20 MB\."),
    rejected(
        "30-mb-path", lambda tmp: sparse_file(tmp / "big.jpg", THIRTY_MB), r"The file is 30\.0 MB; the limit is 20 MB\."
    ),
    rejected(
        "30-mb-file-object", lambda _: io.BytesIO(bytes(THIRTY_MB)), r"The file is over 20 MB; the limit is 20 MB\."
    ),
    rejected("one-byte-over-the-limit", lambda _: bytes(MAX_UPLOAD_BYTES + 1), r"the limit is 20 MB"),
    rejected("exactly-the-byte-limit-is-read", lambda _: bytes(MAX_UPLOAD_BYTES), NOT_AN_IMAGE),
    # Paths that are not files.
    rejected("nonexistent-path", lambda tmp: tmp / "missing.png", r"There is no file at .*missing\.png"),
    rejected("nonexistent-str-path", lambda tmp: str(tmp / "missing.png"), r"There is no file at .*missing\.png"),
    rejected("directory-path", lambda tmp: tmp, r"is a folder, not an image file"),
    rejected("path-with-nul", lambda tmp: f"{tmp}/cat\0.png", r"not a valid file path"),
    # Plain colour images in every accepted format.
    accepted("rgb-png", lambda _: encode(solid((200, 100, 50)), "PNG"), colour_everywhere((200, 100, 50))),
    accepted("rgb-jpeg", lambda _: encode(solid((200, 100, 50)), "JPEG"), colour_everywhere((200, 100, 50), 0.03)),
    accepted("grayscale-jpeg", lambda _: encode(solid(90, "L"), "JPEG"), colour_everywhere((90, 90, 90), 0.03)),
    accepted(
        "webp-lossless", lambda _: encode(solid((10, 200, 30)), "WEBP", lossless=True), colour_everywhere((10, 200, 30))
    ),
    accepted(
        "webp-lossy", lambda _: encode(solid((10, 200, 30)), "WEBP", quality=90), colour_everywhere((10, 200, 30), 0.05)
    ),
    accepted("bmp-rgb", lambda _: encode(solid((1, 2, 250)), "BMP"), colour_everywhere((1, 2, 250))),
    accepted("bmp-palette", lambda _: encode(halves(RED, BLUE).convert("P"), "BMP"), left_and_right(RED, BLUE)),
    accepted("tiff-rgb", lambda _: encode(solid((7, 77, 177)), "TIFF"), colour_everywhere((7, 77, 177))),
    accepted("tiff-multipage-first-page", lambda _: multipage_tiff(), colour_everywhere(BLUE)),
    accepted("mpo-phone-photo-first-frame", lambda _: mpo(), colour_everywhere(RED, 0.03)),
    accepted("animated-gif-first-frame", lambda _: animated_gif(), colour_everywhere(RED)),
    accepted("gif-transparent-index-is-white", lambda _: transparent_gif(), left_and_right(WHITE, BLUE)),
    # Modes.
    accepted("mode-1-png", lambda _: encode(halves(BLACK, WHITE).convert("1"), "PNG"), left_and_right(BLACK, WHITE)),
    accepted("mode-p-png", lambda _: encode(halves(RED, GREEN).convert("P"), "PNG"), left_and_right(RED, GREEN)),
    accepted("rgba-png-transparent-is-white", lambda _: half_transparent_rgba("PNG"), left_and_right(WHITE, RED)),
    accepted(
        "rgba-png-half-alpha-black-is-mid-grey",
        lambda _: encode(solid((0, 0, 0, 128), "RGBA"), "PNG"),
        grey_level(127 / 255),
    ),
    accepted(
        "rgba-webp-transparent-is-white",
        lambda _: half_transparent_rgba("WEBP", lossless=True),
        left_and_right(WHITE, RED),
    ),
    accepted("la-png-transparent-is-white", lambda _: encode(solid((0, 0), "LA"), "PNG"), colour_everywhere(WHITE)),
    accepted("p-png-with-transparency", lambda _: palette_png_with_transparency(), left_and_right(WHITE, BLUE)),
    accepted(
        "rgb-png-with-trns-colour",
        lambda _: encode(halves(RED, BLUE), "PNG", transparency=RED),
        left_and_right(WHITE, BLUE),
    ),
    accepted("l-png-with-trns-value", lambda _: encode(solid(0, "L"), "PNG", transparency=0), colour_everywhere(WHITE)),
    accepted("16-bit-png-mid-grey", lambda _: sixteen_bit_grey(32768), grey_level(0.5, 0.003)),
    accepted("16-bit-png-white", lambda _: sixteen_bit_grey(65535), grey_level(1.0)),
    accepted("16-bit-png-dark-grey-not-clipped", lambda _: sixteen_bit_grey(2570), grey_level(10 / 255)),
    accepted("16-bit-big-endian-tiff", lambda _: sixteen_bit_grey(32768, "TIFF", ">u2"), grey_level(0.5, 0.003)),
    accepted(
        "48-bit-rgb-png",
        lambda _: handmade_png(16, 16, 16, 2, struct.pack(">HHH", 65535, 32768, 0) * 16),
        colour_everywhere((255, 128, 0)),
    ),
    accepted(
        "16-bit-grey-png-with-trns",
        lambda _: handmade_png(
            16, 16, 16, 0, struct.pack(">H", 1234) * 16, png_chunk(b"tRNS", struct.pack(">H", 1234))
        ),
        colour_everywhere(WHITE),
    ),
    accepted(
        "mode-i-tiff",
        lambda _: encode(Image.fromarray(np.repeat([[0] * 16 + [65535] * 16], 32, axis=0).astype(np.int32)), "TIFF"),
        left_and_right(BLACK, WHITE),
    ),
    accepted(
        "mode-f-tiff-unit-range",
        lambda _: encode(Image.fromarray(np.full((16, 16), 0.25, np.float32)), "TIFF"),
        grey_level(0.25),
    ),
    accepted(
        "mode-f-tiff-byte-range",
        lambda _: encode(Image.fromarray(np.full((16, 16), 200.0, np.float32)), "TIFF"),
        grey_level(200 / 255),
    ),
    accepted(
        "cmyk-jpeg-cyan",
        lambda _: encode(solid((255, 0, 0, 0), "CMYK"), "JPEG"),
        colour_everywhere((0, 255, 255), 0.03),
    ),
    accepted(
        "cmyk-tiff-cyan", lambda _: encode(solid((255, 0, 0, 0), "CMYK"), "TIFF"), colour_everywhere((0, 255, 255))
    ),
    accepted(
        "ycbcr-tiff",
        lambda _: encode(solid((200, 100, 50)).convert("YCbCr"), "TIFF"),
        colour_everywhere((200, 100, 50), 0.02),
    ),
    # Phones store photos sideways and say so in EXIF.
    *(
        accepted(
            f"exif-orientation-{orientation}-jpeg", lambda _, o=orientation: exif_rotated_jpeg(o), upright_quadrants
        )
        for orientation in STORED_FOR_ORIENTATION
    ),
    # Sizes and the centre crop.
    accepted(
        "1x1-upscaled", lambda _: encode(solid((9, 99, 199), size=(1, 1)), "PNG"), colour_everywhere((9, 99, 199))
    ),
    accepted("32x32-upscaled", lambda _: encode(halves(RED, BLUE), "PNG"), left_and_right(RED, BLUE)),
    accepted(
        "10000x10-strip",
        lambda _: encode(thirds((10000, 10), along_width=True), "PNG"),
        original_size((10000, 10), colour_everywhere(GREEN)),
    ),
    accepted(
        "10x10000-strip",
        lambda _: encode(thirds((10, 10000), along_width=False), "PNG"),
        original_size((10, 10000), colour_everywhere(GREEN)),
    ),
    accepted("landscape-400x100", lambda _: encode(thirds((400, 100), True), "PNG"), colour_everywhere(GREEN)),
    accepted("portrait-100x400", lambda _: encode(thirds((100, 400), False), "PNG"), colour_everywhere(GREEN)),
    accepted("exact-centre-columns", lambda _: encode(distinct_columns(), "PNG"), source_columns_one_to_sixty_four),
    accepted(
        "exact-centre-rows",
        lambda _: encode(distinct_columns().transpose(Image.Transpose.TRANSPOSE), "PNG"),
        source_rows_one_to_sixty_four,
    ),
    accepted(
        "exact-centre-odd-margin-columns", lambda _: encode(symmetric_columns(67, 64), "PNG"), mirror_symmetric(1)
    ),
    accepted(
        "exact-centre-odd-margin-rows",
        lambda _: encode(symmetric_columns(67, 64).transpose(Image.Transpose.TRANSPOSE), "PNG"),
        mirror_symmetric(0),
    ),
    accepted("exact-centre-after-scaling", lambda _: encode(symmetric_columns(201, 100), "PNG"), mirror_symmetric(1)),
    # Every kind of source.
    accepted("bytearray-input", lambda _: bytearray(encode(solid(GREEN), "PNG")), colour_everywhere(GREEN)),
    accepted("file-object-input", lambda _: io.BytesIO(encode(solid(GREEN), "PNG")), colour_everywhere(GREEN)),
    accepted(
        "open-file-input",
        lambda tmp: written(tmp / "green.png", encode(solid(GREEN), "PNG")).open("rb"),
        colour_everywhere(GREEN),
    ),
    accepted("short-reads-stream-input", lambda _: OneChunkAtATime(encode(noise(), "PNG")), any_valid),
    accepted(
        "pathlib-input", lambda tmp: written(tmp / "green.png", encode(solid(GREEN), "PNG")), colour_everywhere(GREEN)
    ),
    accepted(
        "str-path-input",
        lambda tmp: str(written(tmp / "g.webp", encode(solid(GREEN), "WEBP", lossless=True))),
        colour_everywhere(GREEN),
    ),
    accepted(
        "misleading-extension-is-ignored",
        lambda tmp: written(tmp / "photo.gif", encode(solid(GREEN), "PNG")),
        colour_everywhere(GREEN),
    ),
]


def call_on_fresh_source(case: Case, tmp_path: pathlib.Path, function: Callable[[Source], object]) -> object:
    """File objects are consumed by reading, so every call gets a new one, closed afterwards."""
    source = case.make(tmp_path)
    try:
        return function(source)
    finally:
        if isinstance(source, io.IOBase):
            source.close()


@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
def test_corpus(case: Case, tmp_path: pathlib.Path) -> None:
    if case.error is not None:
        with pytest.raises(ImageError, match=case.error) as raised:
            call_on_fresh_source(case, tmp_path, load_image)
        assert "Traceback" not in str(raised.value) and "\n" not in str(raised.value)
        with pytest.raises(ImageError, match=case.error):
            call_on_fresh_source(case, tmp_path, read_image)
        return
    original = call_on_fresh_source(case, tmp_path, read_image)
    array = call_on_fresh_source(case, tmp_path, load_image)
    assert original.mode == "RGB"
    assert array.shape == (INPUT_SIZE, INPUT_SIZE, 3)
    assert array.dtype == np.float32
    assert array.min() >= 0.0 and array.max() <= 1.0
    np.testing.assert_array_equal(array, to_network_input(original))
    case.check(original, array)


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 45
    assert len({case.name for case in CORPUS}) == len(CORPUS)


# --- mutated files: whatever happens, only ImageError ------------------------------------------------------


FUZZ_SEEDS = range(10)
FUZZ_FORMATS = {
    "jpeg": lambda: encode(noise((40, 30)), "JPEG", exif=Image.Exif().tobytes()),
    "png": lambda: encode(noise((40, 30)).convert("RGBA"), "PNG"),
    "gif": animated_gif,
    "webp": lambda: encode(noise((40, 30)), "WEBP"),
    "bmp": lambda: encode(noise((40, 30)), "BMP"),
    "tiff": lambda: encode(noise((40, 30)), "TIFF", compression="tiff_lzw"),
    "mpo": mpo,
}


def mutate(data: bytes, seed: int) -> bytes:
    """Flip, truncate or splice bytes, mostly near the header where parsers are most fragile."""
    rng = np.random.default_rng(seed)
    mutated = bytearray(data)
    for _ in range(int(rng.integers(1, 6))):
        position = int(rng.integers(0, min(len(mutated), 200) if rng.random() < 0.7 else len(mutated)))
        mutated[position] = int(rng.integers(0, 256))
    if seed % 3 == 0:
        mutated = mutated[: int(rng.integers(1, len(mutated)))]
    if seed % 4 == 1:
        mutated[10:10] = rng.bytes(int(rng.integers(1, 50)))
    return bytes(mutated)


@pytest.mark.parametrize("seed", FUZZ_SEEDS)
@pytest.mark.parametrize("image_format", FUZZ_FORMATS)
def test_mutated_files_give_an_array_or_an_image_error(image_format: str, seed: int) -> None:
    data = mutate(FUZZ_FORMATS[image_format](), seed)
    try:
        array = load_image(data)
    except ImageError as error:
        assert str(error) and "\n" not in str(error)
    else:
        assert array.shape == (INPUT_SIZE, INPUT_SIZE, 3) and array.dtype == np.float32
        assert array.min() >= 0.0 and array.max() <= 1.0


# --- the rest of the API ----------------------------------------------------------------------------------


def test_array_to_image_round_trips_a_network_input() -> None:
    array = load_image(encode(noise(), "PNG"))
    image = array_to_image(array)
    assert image.mode == "RGB" and image.size == (INPUT_SIZE, INPUT_SIZE)
    np.testing.assert_array_equal(to_network_input(image), array)
    np.testing.assert_array_equal(load_image(encode(image, "PNG")), array)


def test_array_to_image_clips_out_of_range_values() -> None:
    array = np.array([[[-0.5, 0.5, 1.5]]], np.float32)
    assert array_to_image(array).getpixel((0, 0)) == (0, 128, 255)


def test_array_to_image_rejects_arrays_that_are_not_rgb() -> None:
    with pytest.raises(ValueError, match=re.escape("(H, W, 3)")):
        array_to_image(np.zeros((8, 8)))


@pytest.mark.parametrize("mode", ["PA", "La", "RGBa", "RGBX", "HSV", "YCbCr", "LAB", "I;16", "I;16B", "I", "F", "CMYK"])
def test_to_network_input_accepts_any_pillow_mode(mode: str) -> None:
    array = to_network_input(Image.new(mode, (5, 3)))
    assert array.shape == (INPUT_SIZE, INPUT_SIZE, 3) and array.dtype == np.float32
    assert array.min() >= 0.0 and array.max() <= 1.0


def test_to_network_input_honours_the_size_argument() -> None:
    assert to_network_input(solid(RED), size=32).shape == (32, 32, 3)
    assert load_image(encode(solid(RED), "PNG"), size=10).shape == (10, 10, 3)


def test_read_image_keeps_full_resolution() -> None:
    assert read_image(encode(noise((640, 480)), "JPEG")).size == (640, 480)


def test_pillows_global_state_is_left_alone() -> None:
    limit_before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageError):
        read_image(one_bit_bomb())
    read_image(encode(solid(RED), "PNG"))
    assert limit_before == Image.MAX_IMAGE_PIXELS
    from PIL import ImageFile

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_unsupported_source_type_is_a_programming_error() -> None:
    with pytest.raises(TypeError):
        read_image(42)  # type: ignore[arg-type]


def test_text_mode_file_is_a_programming_error(tmp_path: pathlib.Path) -> None:
    path = written(tmp_path / "cat.png", encode(solid(RED), "PNG"))
    with open(path, encoding="latin-1") as text_file, pytest.raises(TypeError, match="binary mode"):
        read_image(text_file)  # type: ignore[arg-type]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can read anything")
def test_unreadable_path(tmp_path: pathlib.Path) -> None:
    path = written(tmp_path / "secret.png", encode(solid(RED), "PNG"))
    path.chmod(0)
    with pytest.raises(ImageError, match="not allowed to read"):
        read_image(path)


# -- uploads decode at the size a session keeps (bounded time and memory; figures: benchmarks/bench_upload.py) ----
def test_prepare_upload_keeps_a_preview_and_matches_the_full_resolution_input() -> None:
    from cnnviz.images import ORIGINAL_KEPT_SIZE, prepare_upload

    for image_format in ("JPEG", "PNG"):
        content = encode(noise((2100, 1500)), image_format)
        prepared = prepare_upload(content)
        assert max(prepared.original.size) == ORIGINAL_KEPT_SIZE and prepared.original.mode == "RGB"
        assert not prepared.image.flags.writeable
        full = load_image(content)
        assert np.abs(prepared.image - full).mean() < 0.02, image_format


def test_reduced_decoding_keeps_the_short_side_and_the_orientation() -> None:
    wide = Image.new("RGB", (4000, 1200), RED)
    wide.paste(Image.new("RGB", (2000, 1200), BLUE), (2000, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: shown turned 90° clockwise
    for image_format in ("JPEG", "PNG"):
        upright = read_image(encode(wide, image_format, exif=exif.tobytes()), at_least=512)
        assert min(upright.size) >= 512 and upright.height > upright.width
        middle = upright.width // 2
        top, bottom = upright.getpixel((middle, 10)), upright.getpixel((middle, upright.height - 10))
        assert top[0] > 200 and bottom[2] > 200, image_format  # red (left) ends up on top after the turn


@pytest.mark.parametrize("mode", ["I;16", "I", "F"])
def test_numeric_images_convert_the_same_in_strips(mode: str) -> None:
    from cnnviz.images import _numeric_to_8bit_grey

    rng = np.random.default_rng(3)
    values = rng.uniform(0, 60000, (700, 90))  # 700 rows: several strips
    image = Image.fromarray(values.astype(np.uint16)) if mode == "I;16" else Image.fromarray(values.astype(np.float32))
    image = image if mode != "I" else image.convert("I")
    # values up to 60,000 read as 16-bit in every mode: black at 0, white at 65,535
    expected = np.rint(np.clip(np.asarray(image, np.float64) / 65535, 0, 1) * 255).astype(np.uint8)
    np.testing.assert_array_equal(np.asarray(_numeric_to_8bit_grey(image)), expected)
