"""The control panel: example gallery, upload, the processed input, details, backward mode and colour-range options."""

from __future__ import annotations

import base64
import binascii
import html
import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import panel as pn
import param
from panel.custom import JSComponent
from panel.viewable import Viewer
from PIL import Image

from cnnviz.images import MAX_UPLOAD_BYTES, ImageError, array_to_image, check_upload_size
from cnnviz.learning_state import LearningState
from cnnviz.state import LINK_NAMES, ExplainerState

HERE = Path(__file__).parent
ACCEPT = ".jpg,.jpeg,.png,.gif,.webp,.bmp,.tif,.tiff,image/*"
COLOR_MODE_LABELS = {"Unit": "unit", "Module": "module", "Global": "global", "Layer": "layer"}
PREVIEW_SIZE = 128
SECTION_WIDTH = 300
THUMB_SIZE, THUMB_GAP = 44, 4  # controls.css
GALLERY_FRAME = 6  # the list's padding and border, both sides together (controls.css)
LIST_MAX_HEIGHT = 150  # controls.css: a longer gallery scrolls
PANE_MARGIN = 5  # Panel's default margin, on each side of the gallery pane
PANE_SLACK = 6  # the gallery pane's height beyond its list
GALLERY_HEIGHT = LIST_MAX_HEIGHT + PANE_SLACK  # at most
NARROW_SCREEN = "(max-width: 1199px)"  # below this the controls sit above the overview, in a row
CONTROLS_LAYOUT_CSS = f"""
:host {{ width: {SECTION_WIDTH + 10}px; flex: 0 0 auto; }}
@media {NARROW_SCREEN} {{ :host {{ flex-direction: row !important; flex-wrap: wrap !important; width: 100%; }} }}
"""


# An upload travels in pieces of this size, one websocket message each (base64: ~1.4 MB), so it fits under any
# server's message limit, including Bokeh's default 20 MiB that a whole 20 MB file in base64 (26.7 MB) would not.
UPLOAD_CHUNK_BYTES = 1024 * 1024
_DAMAGED_UPLOAD = "The upload arrived damaged; please try again."


@dataclass(frozen=True, eq=False)
class ReceivedFile:
    """A finished upload: its bytes, or why it was refused before any byte was decoded."""

    name: str
    content: bytes | None
    problem: str = ""


class BrowserControl(JSComponent):
    """Gallery buttons and the upload drop zone: work offline, with keyboard and drag-and-drop.

    The drop zone sends a file as `start` (name, size) then `chunk` messages, one at a time, each only after
    the server asked for it: the size cap is checked before any byte travels and again as pieces arrive, and
    the server never holds more than `max_bytes` of one session's upload.
    """

    kind = param.Selector(default="gallery", objects=["gallery", "upload"], constant=True)
    items = param.List(doc="Gallery entries: key, title, caption, thumbnail data URL (src).")
    value = param.String(default="", doc="Key of the chosen gallery entry.")
    shown = param.String(default="", doc="Key of the entry the page shows: the server's answer to a choice.")
    accept = param.String(default=ACCEPT)
    chunk_bytes = param.Integer(default=UPLOAD_CHUNK_BYTES, constant=True)
    max_bytes = param.Integer(default=MAX_UPLOAD_BYTES, doc="Upload size cap (server side).")
    received = param.ClassSelector(class_=ReceivedFile, doc="The latest finished upload (server side).")

    _rename: ClassVar[dict[str, str | None]] = {"max_bytes": None, "received": None}  # never sent to the browser
    _esm = HERE / "controls.js"
    _stylesheets: ClassVar[list[str]] = [(HERE / "controls.css").read_text()]

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self._upload_id: Any = None
        self._upload_name = ""
        self._upload_size = 0
        self._upload_parts = bytearray()

    def _handle_msg(self, message: Any) -> None:
        if not isinstance(message, dict):
            return
        if self.kind == "gallery":  # a click on a thumbnail: a message, handled at once (no property debounce)
            if message.get("type") == "choose" and any(item["key"] == message.get("key") for item in self.items):
                self.value = message["key"]
        elif message.get("type") == "start":
            self._start_upload(message)
        elif message.get("type") == "chunk" and self._upload_id is not None and message.get("id") == self._upload_id:
            self._add_chunk(message.get("data"))

    def _start_upload(self, message: dict) -> None:
        """A new file replaces any upload still in flight."""
        self._upload_id, self._upload_name, size = message.get("id"), str(message.get("name", "")), message.get("size")
        self._upload_parts = bytearray()
        if not isinstance(size, int) or size < 0:
            self._finish(problem=_DAMAGED_UPLOAD)
            return
        try:
            check_upload_size(size, self.max_bytes)
        except ImageError as error:
            self._finish(problem=str(error))
            return
        self._upload_size = size
        self._ask_for_more()

    def _add_chunk(self, data: Any) -> None:
        try:
            piece = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError, TypeError):
            self._finish(problem=_DAMAGED_UPLOAD)
            return
        if len(self._upload_parts) + len(piece) > self._upload_size:  # more than announced: never past the cap
            self._finish(problem=_DAMAGED_UPLOAD)
            return
        self._upload_parts += piece
        self._ask_for_more()

    def _ask_for_more(self) -> None:
        if len(self._upload_parts) < self._upload_size:
            self._send_msg({"id": self._upload_id, "next": len(self._upload_parts)})
        else:
            self._finish(content=bytes(self._upload_parts))

    def _finish(self, content: bytes | None = None, problem: str = "") -> None:
        self._send_msg({"id": self._upload_id, "done": True})
        received = ReceivedFile(self._upload_name, content, problem)
        self._upload_id, self._upload_parts = None, bytearray()
        self.received = received


class LabelledSwitch(JSComponent):
    """An on/off switch whose words belong to it: a click or tap on the label toggles it, as in any form.

    (Bokeh's Switch and Checkbox draw their label as a plain div, which ignores clicks.)
    """

    value = param.Boolean(default=False)
    label = param.String(default="")

    _esm = HERE / "switch.js"
    _stylesheets: ClassVar[list[str]] = [(HERE / "switch.css").read_text()]


class ReloadFromUrl(JSComponent):
    """Say when the connection drops and when it is back, and reload the page whenever its URL must bring a view
    back, since the URL restores image and selection:

    - after a dropped websocket, as soon as the server answers (Bokeh's own reconnect re-pulls the document
      without its binary buffers and fails on this app's images). Meanwhile an alert says the connection is lost
      (and that an upload was, if one was on its way or on screen: a URL cannot carry it); after the reload a
      status line says it is back;
    - after the browser's Back or Forward, which change the URL that Panel pushed but not the page; a move of
      the window alone (pointing at a map) replaces the history entry, so Back leaves a view in one step.

    Only for served pages (a notebook has neither a websocket to lose nor its own URL).
    """

    window_keys = param.List(
        default=[LINK_NAMES["row"], LINK_NAMES["col"]],
        doc="URL query keys of the window position: moving it replaces the history entry instead of adding one.",
    )

    # Given as text: with a file path here, the page that reloads after a drop asked the CDN for Panel's CSS
    # (seen in test_sessions_ui); read once at import.
    _esm = (HERE / "connection.js").read_text()


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def enlarged_png(image: np.ndarray, scale: int) -> bytes:
    """An RGB array in [0, 1] enlarged with square pixels, so every value stays one sharp block."""
    picture = array_to_image(image)
    return png_bytes(picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST))


def network_input_preview(image: np.ndarray, size: int = PREVIEW_SIZE) -> bytes:
    """The input enlarged with square pixels, so learners see exactly what the network sees."""
    image = np.ascontiguousarray(image, np.float32)
    return _enlarged_preview(image.tobytes(), image.shape, size // image.shape[1])


@lru_cache(maxsize=64)  # the examples: every session starts on one, a class clicks through the same few
def _enlarged_preview(pixels: bytes, shape: tuple[int, ...], scale: int) -> bytes:
    return enlarged_png(np.frombuffer(pixels, np.float32).reshape(shape), scale)


SEEN_CSS = f"""
.seen {{ display: flex; gap: 10px; margin: 0 10px; }}
.seen figure {{ margin: 0; display: flex; flex-direction: column; justify-content: flex-end; }}  /* pictures level */
.seen figcaption {{ font-size: 80%; }}
.seen img {{ display: block; max-width: {PREVIEW_SIZE}px; max-height: {PREVIEW_SIZE}px; }}
.image-caption {{ margin: 4px 10px; }}
"""


def _figure(label: str, png: bytes, description: str, css_class: str = "") -> str:
    source = "data:image/png;base64," + base64.b64encode(png).decode()
    return (
        f"<figure class='{css_class}'><figcaption>{html.escape(label)}</figcaption>"
        f"<img src='{source}' alt='{html.escape(description)}'></figure>"
    )


def gallery_height(count: int) -> int:
    """The gallery pane's height in the side column: a short gallery (the probe images, before `cnnviz data`) gets
    the rows it fills and no empty band under them; a long one scrolls."""
    inner_width = SECTION_WIDTH - 2 * PANE_MARGIN - GALLERY_FRAME
    per_row = max(1, (inner_width + THUMB_GAP) // (THUMB_SIZE + THUMB_GAP))
    rows = max(1, -(-count // per_row))
    list_height = rows * (THUMB_SIZE + THUMB_GAP) - THUMB_GAP + GALLERY_FRAME
    return min(GALLERY_HEIGHT, list_height + PANE_SLACK)


def original_preview(image: Image.Image, size: int = PREVIEW_SIZE) -> bytes:
    small = image.copy()
    small.thumbnail((size, size))
    return png_bytes(small)


class ControlPanel(Viewer):
    """Widgets built once; they write to the session state and follow it when it changes elsewhere."""

    def __init__(self, state: ExplainerState, learning: LearningState | None = None, **params) -> None:
        super().__init__(**params)
        self.state, self.learning = state, learning
        catalog = state.catalog
        self.gallery = BrowserControl(
            kind="gallery",
            items=[
                {"key": e.key, "title": e.title, "caption": e.caption, "src": e.thumbnail} for e in catalog.examples
            ],
            value=state.example,
            shown=state.example,
            sizing_mode="stretch_width",
            height=gallery_height(len(catalog.examples)),
        )
        self.dropzone = BrowserControl(kind="upload", sizing_mode="stretch_width", height=64)
        self.details = LabelledSwitch(label="Show details", value=state.show_details)
        # beside the network, as the details are: the loss needs probabilities, so only for a softmax output
        self.backward_mode = LabelledSwitch(label="Backward mode (the loss's gradients)", visible=False)
        if learning is not None and state.network.infos[-1].kind == "softmax":
            self.backward_mode.param.update(value=learning.backward_mode, visible=True)
            self.backward_mode.param.watch(self._choose_backward_mode, "value")
            learning.param.watch(self._follow_backward_mode, "backward_mode")
        self.color_mode = pn.widgets.RadioButtonGroup(
            label="Colour range", options=COLOR_MODE_LABELS, value=state.color_mode, color="light"
        )
        self.message = pn.pane.HTML("", sizing_mode="stretch_width", visible=False)
        self.hint = pn.pane.HTML(self._hint_html(), visible=bool(catalog.hint), sizing_mode="stretch_width")
        # the pictures and the caption in one pane: each pane costs every new session a few ms of server time
        self.seen = pn.pane.HTML(self._seen_html(), width=SECTION_WIDTH, stylesheets=[SEEN_CSS])

        self.gallery.param.watch(self._choose_example, "value")
        self.dropzone.param.watch(self._receive_upload, "received")
        self.color_mode.param.watch(self._choose_color_mode, "value")
        state.param.watch(self._follow_image, ["image", "original"])  # a new example always brings a new image
        state.param.watch(self._follow_message, "message")
        state.param.watch(self._follow_color_mode, "color_mode")
        self.details.param.watch(self._choose_details, "value")
        state.param.watch(self._follow_details, "show_details")

    def __panel__(self) -> pn.viewable.Viewable:
        pick = pn.Column(
            pn.pane.HTML("<h3 class='controls-title'>Pick an image</h3>", margin=(0, 10)),
            self.gallery,
            self.hint,
            self.dropzone,
            self.message,
            width=SECTION_WIDTH,
        )
        options = pn.Column(
            self.details,
            self.backward_mode,
            pn.pane.HTML("<small>Colour range shared by</small>", margin=(0, 10)),
            self.color_mode,
            width=SECTION_WIDTH,
        )
        return pn.Column(pick, self.seen, options, stylesheets=[CONTROLS_LAYOUT_CSS])

    # -- from the browser to the state -----------------------------------------------------------------
    def _choose_example(self, event: param.parameterized.Event) -> None:
        if event.new:
            self.state.param.update(example=event.new, message="")

    async def _receive_upload(self, event: param.parameterized.Event) -> None:
        """Decoding runs off the event loop (Panel runs async callbacks there), so other sessions stay responsive."""
        received: ReceivedFile = event.new
        if received.content is None:
            self.state.message = received.problem
        else:
            await self.state.upload_off_loop(received.content)

    def _choose_color_mode(self, event: param.parameterized.Event) -> None:
        self.state.color_mode = event.new

    # -- from the state to the widgets -----------------------------------------------------------------
    def _follow_image(self, *_events) -> None:
        state = self.state
        with pn.io.hold():
            # `shown` ends the browser's "working…". `value` only when the image came from elsewhere (URL, tour,
            # Lab): Panel takes the next browser change of a property it just set as its echo and drops it, and
            # with clicks arriving during a coalesced flush that would be the newest click.
            if self.gallery.value != state.example:
                self.gallery.value = state.example
            self.gallery.shown = state.example
            self.seen.object = self._seen_html()

    def _follow_message(self, event: param.parameterized.Event) -> None:
        text = html.escape(event.new)  # never render user-influenced text as HTML
        self.message.object = f"<div role='alert' class='upload-error'>{text}</div>" if text else ""
        self.message.visible = bool(text)

    def _choose_details(self, event: param.parameterized.Event) -> None:
        self.state.show_details = event.new

    def _follow_details(self, event: param.parameterized.Event) -> None:
        self.details.value = event.new

    def _choose_backward_mode(self, event: param.parameterized.Event) -> None:
        self.learning.backward_mode = event.new

    def _follow_backward_mode(self, event: param.parameterized.Event) -> None:
        self.backward_mode.value = event.new

    def _follow_color_mode(self, event: param.parameterized.Event) -> None:
        self.color_mode.value = event.new

    def _seen_html(self) -> str:
        """The uploaded picture (if any) beside what the network sees, and the caption."""
        state = self.state
        height, width = state.network.input_shape[:2]
        pictures = []
        if state.original is not None:
            pictures.append(_figure("Your image", original_preview(state.original), "Your image as uploaded"))
        pictures.append(
            _figure(
                f"What the network sees ({height}×{width})",
                network_input_preview(state.image),
                f"The {height}×{width} input, each pixel enlarged",
                "network-input",
            )
        )
        title = html.escape(state.image_title)
        caption = f"<br><small>{html.escape(state.catalog[state.example].caption)}</small>" if state.example else ""
        return f"<div class='seen'>{''.join(pictures)}</div><p class='image-caption'><b>{title}</b>{caption}</p>"

    def _hint_html(self) -> str:
        return f"<p class='hint'><small>{html.escape(self.state.catalog.hint)}</small></p>"
