"""cnnviz in Jupyter: `cnnviz.notebook.extension()` in place of `pn.extension()`.

Two things the plain Panel extension gets wrong for this app in JupyterLab and Notebook 7:
- it loads BokehJS and Panel's JavaScript from CDNs, so with no internet nothing renders: here they are inlined;
- a change made while an output is still rendering can be lost: Panel retries each such message on a timer, and
  once the output's comm opens a later message can overtake an earlier one, so *Run All* leaves the view stale
  while the kernel has moved on. Here each output's messages wait, in order, until the browser says the output is
  on screen.
"""

from __future__ import annotations

from typing import Any

import panel as pn
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

    def init(self) -> None:
        super().init()
        held, self._held = self._held or [], None
        for data, metadata, buffers in held:
            self._comm.send(data, metadata=metadata, buffers=buffers)

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = ()) -> None:
        if self._held is not None:
            if len(self._held) < MAX_HELD_MESSAGES:
                self._held.append((data, metadata, list(buffers)))
                return
            self._held = None  # never drawn (a headless run): stop holding, and open now as Panel would
            super().init()
        self._comm.send(data, metadata=metadata, buffers=list(buffers))


def extension(*extensions: str, **config: Any) -> None:
    """`pn.extension` with inline resources and held comms; takes the same arguments."""
    config.setdefault("inline", True)
    pn.extension(*extensions, **config)
    manager = pn.state._comm_manager  # set by pn.extension when it runs in a kernel
    if manager.server_comm is JupyterComm:  # Jupyter only; other front ends keep their comms
        manager.server_comm = CommHeldUntilRendered
