"""cnnviz in Jupyter: `cnnviz.notebook.extension()` in place of `pn.extension()`.

What the plain Panel extension gets wrong for this app in JupyterLab and Notebook 7:
- it loads BokehJS and Panel's JavaScript from CDNs, so with no internet nothing renders: here they are inlined;
- even with `inline=True`, components created after the first render (a pane the kernel adds, a theme stylesheet)
  link Panel's stylesheets from its CDN: here every stylesheet Panel ships comes inline;
- layouts that switch to one column on narrow screens ask the window's width, but in a notebook the cell is what is
  narrow (about 970 px of a 1440 px window beside JupyterLab's file browser): here those rules ask the cell's width;
- a change made while an output is still rendering can be lost: Panel retries each such message on a timer, and
  once the output's comm opens a later message can overtake an earlier one, so *Run All* leaves the view stale
  while the kernel has moved on. Here each output's messages wait, in order, until the browser says the output is
  on screen;
- JupyterLab 4.4+ and Notebook 7 send each comm's messages on a kernel subshell (ipykernel 7), so Panel would run
  a click's callbacks, and open an output's comm, in a thread of their own, beside the main thread running the
  cells: Bokeh documents and Panel's held messages are not thread-safe, and an update could be lost. Here the
  messages of the view's comms are handled on the main shell, in order with the cells, as in classic kernels;
- Panel's comm sends each change the kernel makes back to the kernel once the browser has applied it. When two
  changes of one property travel close together (*Run All* shows an example, then an array), the echo of the first
  can arrive after the second and put the first back: the explainer then shows an image no cell asked for, and a
  click on that image changes nothing. Here the browser sends only its own changes (`notebook_no_echo.js`), as
  BokehJS does with a server; it also spares the kernel decoding each image it sent a second time.
"""

from __future__ import annotations

import base64
import re
import threading
from pathlib import Path
from typing import Any

import panel as pn
from bokeh.models import UIElement
from panel import reactive as panel_reactive
from panel.io import resources as panel_resources
from panel.io.notebook import JupyterCommJSBinary
from panel.io.resources import CDN_DIST, DIST_DIR, LOCAL_DIST
from pyviz_comms import JupyterComm

# a view nobody renders (a headless run, an output cleared before it drew) stops holding messages after this many
MAX_HELD_MESSAGES = 5_000


class _NotYetOpen:
    """Stands in for the Jupyter comm until the browser has drawn the output: Panel then hands every message to
    `send` at once (it would otherwise retry each one on a timer, and a retry that lands after the comm opens
    overtakes the older ones, so the browser meets models it was never sent and stops applying changes)."""

    def close(self) -> None:
        pass


class CommHeldUntilRendered(JupyterComm):
    """A server comm that opens when its output's client comm does (Panel calls `init` then), and holds the
    messages sent before that, in order."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._held: list[tuple[Any, Any, list]] | None = []
        self._comm = _NotYetOpen()
        # the output's comm may open on another thread than the cell sending (a kernel subshell): one at a time
        self._lock = threading.RLock()

    def init(self) -> None:
        with self._lock:
            super().init()
            held, self._held = self._held or [], None
            for data, metadata, buffers in held:
                self._comm.send(data, metadata=metadata, buffers=buffers)

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = ()) -> None:
        with self._lock:
            if self._held is not None:
                if len(self._held) < MAX_HELD_MESSAGES:
                    self._held.append((data, metadata, list(buffers)))
                    return
                self._held = None  # never drawn (a headless run): stop holding, and open now as Panel would
                super().init()
            self._comm.send(data, metadata=metadata, buffers=list(buffers))


def _on_the_main_shell(_data: Any, _subshell_id: str | None) -> None:
    """ipykernel's routing hook for a comm's incoming messages: the main shell (no subshell)."""
    return None


class ClientCommOnMainShell(JupyterCommJSBinary):
    """Panel's client comm (the browser's events: clicks, pointer moves), its messages handled on the kernel's main
    shell. JupyterLab 4.4+ and Notebook 7 send them on a subshell of their own, and ipykernel 7 would run Panel's
    handler there, in another thread than the cells: it changes the same Bokeh documents and sends on the same
    comms as they do, with no lock. ipykernel asks a comm's `_reply_subshell_for(data, subshell_id)` where to
    send each of its messages; kernels without subshells never ask."""

    def _handle_open(self, comm: Any, msg: Any) -> None:
        comm._reply_subshell_for = _on_the_main_shell
        super()._handle_open(comm, msg)


def _inline_after_patch(stylesheet: Any, dist_url: str) -> None:
    """Panel's `patch_stylesheet`, then a file Panel ships becomes a data: URL of its own text.

    Panel inlines its stylesheets when an output first renders, but the models it creates later (a pane the
    kernel adds) get their theme and loading stylesheets through this function, which points them at its CDN.
    """
    _panel_patch_stylesheet(stylesheet, dist_url)
    url = getattr(stylesheet, "url", "")
    if url.startswith(LOCAL_DIST):  # outside a render Panel names its files by the server's path
        url = CDN_DIST + url.removeprefix(LOCAL_DIST)
    shipped = DIST_DIR / url.removeprefix(CDN_DIST).split("?")[0] if url.startswith(CDN_DIST) else None
    if shipped is not None and shipped.is_file():
        stylesheet.url = "data:text/css;base64," + base64.b64encode(shipped.read_bytes()).decode()


_panel_patch_stylesheet = panel_resources.patch_stylesheet


# `@media (max-width: …)` / `(min-width: …)` with its block: the same rule is added as a container query
WIDTH_MEDIA_QUERY = re.compile(r"@media\s*(\((?:max|min)-width:[^)]*\))\s*\{")
# the output area of a cell is the container those rules measure (JupyterLab and Notebook 7)
CELL_CONTAINER_CSS = "<style>.jp-OutputArea-output { container-type: inline-size; }</style>"
NO_ECHO_SCRIPT = Path(__file__).with_name("notebook_no_echo.js")


def rules_for_the_cell(css: str) -> str:
    """`css` plus each of its width media rules again as a container rule, so that it follows the cell's width."""
    added = []
    for match in WIDTH_MEDIA_QUERY.finditer(css):
        depth, end = 1, match.end()
        while depth and end < len(css):
            depth += {"{": 1, "}": -1}.get(css[end], 0)
            end += 1
        added.append(f"@container {match.group(1)} {{{css[match.end() : end]}")
    return "\n".join([css, *added])


def _narrow_rules_follow_the_cell(viewable: Any, root: Any) -> None:
    """A preprocessing hook: on each newly displayed root, width media rules also become container rules."""
    if root.ref["id"] in _roots_done:
        return
    _roots_done.add(root.ref["id"])
    for model in root.select({"type": UIElement}):
        sheets = [rules_for_the_cell(sheet) if isinstance(sheet, str) else sheet for sheet in model.stylesheets]
        if sheets != list(model.stylesheets):
            model.stylesheets = sheets


_roots_done: set[str] = set()


def extension(*extensions: str, **config: Any) -> None:
    """`pn.extension` with inline resources and stylesheets, held comms, and layouts that fit the cell; takes the
    same arguments."""
    config.setdefault("inline", True)
    pn.extension(*extensions, **config)
    manager = pn.state._comm_manager  # set by pn.extension when it runs in a kernel
    if manager.server_comm is not JupyterComm and manager.server_comm is not CommHeldUntilRendered:
        return  # Jupyter only; other front ends keep their comms and styles
    manager.server_comm = CommHeldUntilRendered
    if issubclass(ClientCommOnMainShell, manager.client_comm):
        manager.client_comm = ClientCommOnMainShell
    # Panel's components (each new model) and designs call it by these two names
    panel_reactive.patch_stylesheet = panel_resources.patch_stylesheet = _inline_after_patch
    if _narrow_rules_follow_the_cell not in pn.viewable.Viewable._preprocessing_hooks:
        pn.viewable.Viewable._preprocessing_hooks.append(_narrow_rules_follow_the_cell)
    from IPython.display import HTML, display

    display(HTML(f"{CELL_CONTAINER_CSS}<script>{NO_ECHO_SCRIPT.read_text(encoding='utf-8')}</script>"))
