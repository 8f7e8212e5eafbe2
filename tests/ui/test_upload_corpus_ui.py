"""Hostile and odd uploads, end to end through the browser: each is processed or refused clearly, and the session
keeps working. The corpus is generated here; `tests/test_images.py` covers the same ground without a browser.

One served app and one page for the whole corpus (a page per case would be far too slow); every case says which
file failed. The server uses Bokeh's default websocket message limit (20 MiB), like plain `panel serve`.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from cnnviz.app import Explainer
from cnnviz.images import MAX_UPLOAD_BYTES, ImageError, prepare_upload
from cnnviz.resources import shared_catalog, shared_network
from cnnviz.state import ExplainerState

pytestmark = pytest.mark.ui

RED, BLUE = (230, 20, 20), (20, 20, 230)


@dataclass(frozen=True)
class Case:
    """One upload; `processed` says whether cnnviz should use it (True) or refuse it with a message (False)."""

    name: str
    content: bytes
    processed: bool
    mime: str = "application/octet-stream"
    check: Callable[[np.ndarray], bool] | None = None  # what a person would expect to see in the network input


def encode(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format, **options)
    return buffer.getvalue()


def halves(size: tuple[int, int], first=RED, second=BLUE) -> Image.Image:
    """Left half `first`, right half `second`: shows whether orientation and cropping are right."""
    image = Image.new("RGB", size, second)
    image.paste(first, (0, 0, size[0] // 2, size[1]))
    return image


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge size: a decompression bomb."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    ihdr = struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    data = zlib.compress(b"\0" * 1000)
    idat = struct.pack(">I", len(data)) + b"IDAT" + data + struct.pack(">I", zlib.crc32(b"IDAT" + data))
    iend = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + ihdr + idat + iend


def gif_declaring(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00" + b"\x2c" + bytes(9) + b"\x02\x02D\x01\x00;"


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (80, 80), color) for color in (RED, BLUE, (20, 200, 20))]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def exif_rotated_jpeg() -> bytes:
    """Stored landscape (red left, blue right), EXIF orientation 6: shown portrait with red on top."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(halves((160, 80)), "JPEG", quality=95, exif=exif)


def transparent_png() -> bytes:
    image = Image.new("RGBA", (90, 90), (*RED, 0))  # fully transparent red: shown as white on a page
    image.paste((*BLUE, 255), (30, 30, 60, 60))
    return encode(image, "PNG")


def noise_png(side: int) -> bytes:
    """Random pixels do not compress: a valid PNG of about side² × 3 bytes."""
    pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    return encode(Image.fromarray(pixels), "PNG", compress_level=0)


def mostly(color: tuple[int, int, int]) -> Callable[[np.ndarray], bool]:
    return lambda image: np.abs(image.mean(axis=(0, 1)) - np.array(color) / 255).max() < 0.08


def red_above_blue(image: np.ndarray) -> bool:
    return mostly(RED)(image[:24]) and mostly(BLUE)(image[-24:])


def corpus() -> list[Case]:
    jpeg = encode(halves((200, 150)), "JPEG", quality=90)
    png = encode(halves((200, 150)), "PNG")
    random_bytes = os.urandom(5000)
    html_name = "<img src=x onerror=alert(1)>"
    return [
        Case("empty.png", b"", False),
        Case("random.jpg", random_bytes, False, "image/jpeg"),
        Case("random.png", random_bytes, False, "image/png"),
        Case("random.gif", random_bytes, False, "image/gif"),
        Case("random.webp", random_bytes, False, "image/webp"),
        Case("text.png", b"hello, this is text", False, "image/png"),
        Case("page.png", b"<html><script>alert(1)</script></html>", False, "image/png"),
        Case("truncated.jpg", jpeg[: len(jpeg) // 2], False, "image/jpeg"),
        Case("header-only.jpg", jpeg[:200], False, "image/jpeg"),
        Case("truncated.png", png[: len(png) // 2], False, "image/png"),
        Case("truncated.gif", animated_gif()[:60], False, "image/gif"),
        Case("bomb.png", png_declaring(100_000, 100_000), False, "image/png"),
        Case("bomb.gif", gif_declaring(65_535, 65_535), False, "image/gif"),
        Case("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>', False, "image/svg+xml"),
        Case("document.pdf", encode(Image.new("RGB", (50, 50), RED), "PDF"), False, "application/pdf"),
        Case("icon.ico", encode(Image.new("RGB", (32, 32), RED), "ICO"), False, "image/x-icon"),
        Case("archive.zip", b"PK\x05\x06" + bytes(18), False, "application/zip"),
        Case("thirty-mb.jpg", os.urandom(30 * 1024 * 1024), False, "image/jpeg"),
        Case("just-over-the-cap.png", os.urandom(MAX_UPLOAD_BYTES + 1), False, "image/png"),
        Case("nineteen-mb-of-noise.png", os.urandom(19 * 1024 * 1024), False, "image/png"),
        Case(f"{html_name}.png", b"not a picture", False, "image/png"),
        Case("photo.jpg", jpeg, True, "image/jpeg"),
        Case("photo.png", png, True, "image/png"),
        Case(f"{html_name}.jpg", jpeg, True, "image/jpeg"),
        Case(
            '"><script>alert(1)</script>.png',
            encode(Image.new("RGB", (70, 70), BLUE), "PNG"),
            True,
            "image/png",
            mostly(BLUE),
        ),
        Case("one-pixel.png", encode(Image.new("RGB", (1, 1), RED), "PNG"), True, "image/png", mostly(RED)),
        Case("one-pixel.jpg", encode(Image.new("RGB", (1, 1), BLUE), "JPEG"), True, "image/jpeg", mostly(BLUE)),
        Case("63x63.png", encode(Image.new("RGB", (63, 63), RED), "PNG"), True, "image/png", mostly(RED)),
        Case("strip-10000x10.png", encode(halves((10_000, 10), BLUE, BLUE), "PNG"), True, "image/png", mostly(BLUE)),
        Case("strip-10x10000.png", encode(Image.new("RGB", (10, 10_000), RED), "PNG"), True, "image/png", mostly(RED)),
        Case("animated.gif", animated_gif(), True, "image/gif", mostly(RED)),  # the first frame
        Case(
            "cmyk.jpg",
            encode(Image.new("CMYK", (80, 80), (0, 255, 255, 0)), "JPEG"),
            True,
            "image/jpeg",
            mostly((255, 0, 0)),
        ),
        Case(
            "sixteen-bit.png",
            encode(Image.new("I;16", (80, 80), 65535), "PNG"),
            True,
            "image/png",
            mostly((255, 255, 255)),
        ),
        Case(
            "transparent.png",
            transparent_png(),
            True,
            "image/png",
            lambda image: mostly((255, 255, 255))(image[:8, :8]) and mostly(BLUE)(image[28:36, 28:36]),
        ),
        Case(
            "grey-alpha.png",
            encode(Image.new("LA", (50, 50), (40, 255)), "PNG"),
            True,
            "image/png",
            mostly((40, 40, 40)),
        ),
        Case(
            "palette.png", encode(Image.new("RGB", (50, 50), BLUE).convert("P"), "PNG"), True, "image/png", mostly(BLUE)
        ),
        Case("grey.jpg", encode(Image.new("L", (50, 50), 128), "JPEG"), True, "image/jpeg", mostly((128, 128, 128))),
        Case("rotated-by-exif.jpg", exif_rotated_jpeg(), True, "image/jpeg", red_above_blue),
        Case("image.bmp", encode(Image.new("RGB", (50, 40), RED), "BMP"), True, "image/bmp", mostly(RED)),
        Case("image.tiff", encode(Image.new("RGB", (50, 40), BLUE), "TIFF"), True, "image/tiff", mostly(BLUE)),
        Case(
            "image.webp",
            encode(Image.new("RGB", (50, 40), RED), "WEBP", lossless=True),
            True,
            "image/webp",
            mostly(RED),
        ),
        Case("eighteen-mb-photo.png", noise_png(2400), True, "image/png"),  # travels in 17 pieces
        Case("last-one.png", encode(Image.new("RGB", (64, 64), BLUE), "PNG"), True, "image/png", mostly(BLUE)),
    ]


def expected_outcome(content: bytes) -> np.ndarray | str:
    """What the engine makes of the file: the network input, or the message the student must see."""
    try:
        return prepare_upload(content).image
    except ImageError as error:
        return str(error)


@pytest.fixture
def app(serve):
    states: list[ExplainerState] = []

    def page_factory():
        explainer = Explainer(network=shared_network(), catalog=shared_catalog())
        states.append(explainer.state)
        return explainer.page()

    url = serve(page_factory)
    return url, states


def predicted_label(page) -> str:
    return page.locator(".ov-class.ov-predicted .ov-class-name").inner_text()


def test_every_odd_upload_is_processed_or_refused_and_the_session_keeps_working(app, page, wait_until, screenshot):
    url, states = app
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(url)
    page.locator(".ov-class").first.wait_for()
    state = states[-1]
    upload = page.locator("input[type=file]")
    alert = page.get_by_role("alert")
    thumbnails = [example.key for example in shared_catalog().examples[:2]]
    cases = corpus()
    assert len(cases) >= 40
    for number, case in enumerate(cases):
        # the session still responds: pick a gallery image and see the prediction follow
        key = thumbnails[number % 2]
        page.locator(f".thumb[data-key='{key}']").click()
        # a click lands at the session's next flush (state.requests): the example, then its image and trace
        chosen = shared_catalog()[key].image
        wait_until(lambda key=key, chosen=chosen: state.example == key and state.image is chosen, timeout=15)
        wait_until(lambda chosen=chosen: np.array_equal(state.trace.image, chosen), timeout=15)
        wait_until(lambda: predicted_label(page) == state.trace.predicted_class and alert.count() == 0, timeout=15)
        before = state.image

        expected = expected_outcome(case.content)
        assert isinstance(expected, np.ndarray) == case.processed, f"{case.name}: the engine disagrees: {expected}"
        # generous: Playwright itself takes a while to hand a 30 MB buffer to a busy browser
        upload.set_input_files({"name": case.name, "mimeType": case.mime, "buffer": case.content}, timeout=180_000)
        if case.processed:
            wait_until(lambda: state.example == "", timeout=30)
            np.testing.assert_allclose(state.image, expected, atol=1e-6, err_msg=case.name)
            assert case.check is None or case.check(state.image), f"{case.name}: the network input looks wrong"
            wait_until(lambda: predicted_label(page) == state.trace.predicted_class, timeout=30)
            assert alert.count() == 0, f"{case.name}: processed, yet the page shows {alert.all_inner_texts()}"
        else:
            alert.wait_for(timeout=30_000)
            assert alert.inner_text().strip() == expected, f"{case.name}: unclear message"
            assert state.image is before and state.example == key, f"{case.name}: the previous image was replaced"
        if number in (0, 21):
            screenshot(page, f"upload-corpus-{case.name}")
    assert page.locator("img[src=x], script:text('alert(1)')").count() == 0
    assert not dialogs, f"user text ran as code: {dialogs}"
    expect(page.locator(".dropzone")).to_contain_text("Upload your own image")  # the label resets after the last one
