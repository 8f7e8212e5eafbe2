"""notebooks/explainer.ipynb in a real JupyterLab and in Notebook 7, in headless Chromium, with every request off
the machine refused.

What a student does: open the notebook, *Run All* (and *Restart Kernel and Run All Cells*), look at the explainer
and click in it. The view must end on the last cell's image (the gradient), fit the cell's width at 1440 px, and
answer a click; nothing may be fetched from the internet.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from servers import free_port, wait_until_answering

pytestmark = pytest.mark.ui

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "explainer.ipynb"
LAST_IMAGE_TITLE = "A red-to-blue gradient"  # what the notebook's last show_array call names its image
START_TIMEOUT_S = 180
RUN_TIMEOUT_MS = 240_000  # a cold kernel imports Panel and HoloViews and renders the app

pytest.importorskip("jupyterlab", reason="JupyterLab is not installed (pip install -e '.[test]')")

# front end -> (Python module that starts it, the notebook's address under the server)
FRONT_ENDS = {"jupyterlab": ("jupyterlab", "lab/tree"), "notebook7": ("notebook", "notebooks")}
# JupyterLab's "get notified about Jupyter news?" toast would cover the view: answered "no" in its settings
NO_NEWS = {"@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"}}


# one property change in a Bokeh patch inside a kernel websocket frame; the patch may be a JSON string within the
# Jupyter message's JSON, so each quote may come escaped
CHANGED_PROPERTY = re.compile(rb'\\*"model\\*":\s*\{\\*"id\\*":\s*\\*"([\w-]+)\\*"\},\s*\\*"attr\\*":\s*\\*"(\w+)')


class KernelTraffic:
    """Which model properties the kernel changed in the page, and which the page sent to the kernel."""

    def __init__(self) -> None:
        self.from_kernel: set[tuple[bytes, bytes]] = set()
        self.to_kernel: list[tuple[bytes, bytes]] = []

    def watch(self, websocket) -> None:
        if "/api/kernels/" in websocket.url:
            websocket.on("framereceived", lambda frame: self.from_kernel.update(self._changes(frame)))
            websocket.on("framesent", lambda frame: self.to_kernel.extend(self._changes(frame)))

    @staticmethod
    def _changes(frame: str | bytes) -> list[tuple[bytes, bytes]]:
        data = frame.encode() if isinstance(frame, str) else frame
        return [(match[1], match[2]) for match in CHANGED_PROPERTY.finditer(data)]

    def echoes(self) -> list[str]:
        """Properties the page sent back after the kernel set them: with no one touching the page, each is an echo."""
        return sorted(
            {
                f"{attr.decode()} of {model.decode()}"
                for model, attr in self.to_kernel
                if (model, attr) in self.from_kernel
            }
        )


@pytest.fixture(scope="module", params=list(FRONT_ENDS))
def jupyter_server(request, tmp_path_factory) -> Iterator[str]:
    """JupyterLab or Notebook 7 on a free loopback port, on a copy of the notebook (autosave never touches the
    tracked one); yields the notebook's URL."""
    module, notebook_path = FRONT_ENDS[request.param]
    pytest.importorskip(module, reason=f"{module} is not installed (pip install -e '.[test]')")
    root = tmp_path_factory.mktemp("lab")
    state = tmp_path_factory.mktemp("lab-state")  # the user's Lab settings and workspaces stay untouched
    for name, settings in NO_NEWS.items():
        (state / "settings" / name).parent.mkdir(parents=True, exist_ok=True)
        (state / "settings" / name).write_text(json.dumps(settings), encoding="utf-8")
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    port = free_port()
    environment = dict(os.environ)
    for name, folder in {
        "JUPYTER_CONFIG_DIR": "config",
        "JUPYTERLAB_SETTINGS_DIR": "settings",
        "JUPYTERLAB_WORKSPACES_DIR": "workspaces",
    }.items():
        environment[name] = str(state / folder)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            module,
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--ServerApp.root_dir={root}",
            "--IdentityProvider.token=",
            "--ServerApp.password=",
            "--ServerApp.disable_check_xsrf=True",
            "--ServerApp.allow_root=True",
        ],
        cwd=root,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(f"{url}/api/status", server, START_TIMEOUT_S, module)
        yield f"{url}/{notebook_path}/{NOTEBOOK.name}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture
def lab_page(browser, jupyter_server) -> Iterator[tuple[object, list[str], KernelTraffic]]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    remote: list[str] = []

    def keep_local(route) -> None:
        url = route.request.url
        if urlparse(url).hostname == "127.0.0.1" or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            remote.append(url)
            route.abort()

    context.route("**/*", keep_local)
    page = context.new_page()
    traffic = KernelTraffic()
    page.on("websocket", traffic.watch)
    page.add_init_script("try { localStorage.setItem('cnnviz-tour-seen', 'yes') } catch (e) {}")
    page.goto(jupyter_server)
    page.wait_for_function("document.querySelector('.jp-Notebook .jp-Cell')", timeout=120_000)
    yield page, remote, traffic
    context.close()


def menu(page, menu_name: str, item: str) -> None:
    """Click through JupyterLab's menu bar, as a person does."""
    page.locator(".jp-Notebook").first.click()
    page.locator(".lm-MenuBar-itemLabel", has_text=menu_name).first.click()
    page.locator(".lm-Menu-itemLabel", has_text=item).first.click()


def accept_kernel_dialog(page) -> bool:
    """JupyterLab may ask which kernel to start (Python 3 is preselected): answer as a person would."""
    dialog = page.locator(".jp-Dialog")
    try:
        dialog.wait_for(timeout=5_000)
    except PlaywrightTimeout:
        return False
    dialog.locator(".jp-mod-accept").click()
    dialog.wait_for(state="detached", timeout=30_000)
    return True


def wait_for_every_cell(page) -> None:
    """Every code cell has an execution count and the kernel is idle again."""
    page.wait_for_function(
        """() => {
          const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent);
          const status = document.querySelector('.jp-Notebook-ExecutionIndicator');
          return prompts.length > 0 && prompts.every(text => /\\[\\d+\\]/.test(text))
            && (!status || status.getAttribute('data-status') === 'idle');
        }""",
        timeout=RUN_TIMEOUT_MS,
        polling=500,
    )


def explainer_shows(page, text: str) -> None:
    page.locator(".jp-OutputArea-output .image-caption").filter(has_text=text).first.wait_for(timeout=60_000)


# the element (through shadow roots) that reaches furthest right past the output's edge, or null when all fits
OVERFLOW_PAST_OUTPUT = """(output) => {
  const limit = output.getBoundingClientRect().right + 1;
  let worst = null;
  const walk = (root) => {
    for (const element of root.querySelectorAll('*')) {
      const box = element.getBoundingClientRect();
      if (box.width > 0 && box.height > 0 && box.right > limit && (!worst || box.right > worst.right)) {
        worst = {right: Math.round(box.right), limit: Math.round(limit), element: element.tagName + ' '
                 + String(element.className).slice(0, 60), text: (element.textContent || '').slice(0, 40)};
      }
      if (element.shadowRoot) walk(element.shadowRoot);
    }
  };
  walk(output);
  return worst;
}"""


def check_view(page, screenshot, name: str) -> None:
    """The view shows the last cell's image, fits the cell, and a click reaches the kernel and comes back."""
    explainer_shows(page, LAST_IMAGE_TITLE)
    output = page.locator(".jp-OutputArea-output").filter(has=page.locator(".thumb")).first
    output.scroll_into_view_if_needed()
    screenshot(page, name)
    # the whole overview, class column included, within the cell: no sideways scrolling
    assert output.evaluate(OVERFLOW_PAST_OUTPUT) is None


def click_changes_the_image(page) -> None:
    """The second example replaces the gradient: the click reaches the kernel and the update comes back.

    JupyterLab 4.4+ and Notebook 7 send the click on a kernel subshell; cnnviz.notebook has the kernel handle it on
    its main shell (Panel's handler is not thread-safe), which this checks end to end."""
    page.locator(".jp-OutputArea-output .thumb").nth(1).click()
    page.locator(".jp-OutputArea-output .image-caption").filter(has_not_text=LAST_IMAGE_TITLE).first.wait_for(
        timeout=60_000
    )


def run_all(page, screenshot) -> None:
    """Run All once the kernel is up; if Lab asks which kernel to start, take the notebook's own (Python 3)."""
    kernel_idle = "document.querySelector('.jp-Notebook-ExecutionIndicator')?.getAttribute('data-status')"
    page.wait_for_function(f"document.querySelector('.jp-Dialog') || {kernel_idle} === 'idle'", timeout=120_000)
    accept_kernel_dialog(page)
    menu(page, "Run", "Run All Cells")
    if accept_kernel_dialog(page):  # the run was asked for before a kernel was chosen: ask again
        page.wait_for_function(f"{kernel_idle} === 'idle'", timeout=120_000)
        menu(page, "Run", "Run All Cells")
    try:
        wait_for_every_cell(page)
    finally:
        screenshot(page, "notebook-after-run-all")


@pytest.mark.timeout(900)
def test_run_all_and_restart_run_all_end_on_the_last_image(lab_page, screenshot):
    page, remote, traffic = lab_page
    name = "notebook7" if "/notebooks/" in page.url else "jupyterlab"
    run_all(page, screenshot)
    check_view(page, screenshot, f"{name}-run-all")
    assert traffic.from_kernel, "no change from the kernel was seen: the frame pattern no longer matches"

    menu(page, "Kernel", "Restart Kernel and Run All Cells")
    page.locator(".jp-Dialog .jp-mod-accept").first.click()
    page.wait_for_function(
        "[...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].every(p => !/\\[\\d+\\]/.test(p.textContent))"
        " || document.querySelector('.jp-Notebook-ExecutionIndicator')?.getAttribute('data-status') === 'busy'",
        timeout=120_000,
    )
    wait_for_every_cell(page)
    check_view(page, screenshot, f"{name}-restart-run-all")
    # BokehJS, Panel's JavaScript and stylesheets, and the app all come inline
    assert remote == []
    # the page sends the kernel only its own changes: a late echo of an older value would put it back
    # (Run All's earlier example over its array), and a click on that example would then change nothing
    assert traffic.echoes() == []
    click_changes_the_image(page)
