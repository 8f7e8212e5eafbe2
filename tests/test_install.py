"""A normal (non-editable) install works away from the checkout: the built wheel carries the weights, the
checkpoints, the article and the app script, and `cnnviz serve` and `cnnviz export` run from any folder.

The wheel goes into a new virtual environment that sees this environment's packages (so the test downloads
nothing but the build backend) but not the checkout: it runs from a temporary folder.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SERVE_TIMEOUT_SECONDS = 120


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    (built,) = dist.glob("cnnviz-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(tmp_path_factory, wheel) -> Path:
    home = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(home)], check=True, timeout=300)
    subprocess.run(
        [home / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed", str(wheel)],
        check=True,
        timeout=300,
    )
    return home


@pytest.fixture
def elsewhere(tmp_path) -> dict:
    """Run from a folder that is not the checkout, with the user's data folder there too (no photos)."""
    environment = {name: value for name, value in os.environ.items() if not name.startswith(("CNNVIZ_", "PYTHON"))}
    environment["XDG_DATA_HOME"] = str(tmp_path / "user-data")
    return {"cwd": tmp_path, "env": environment}


def test_wheel_carries_weights_checkpoints_article_and_app(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    package_files = {
        path.relative_to(REPO).as_posix()
        for path in (REPO / "cnnviz").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    shipped = {
        f"cnnviz/{path.relative_to(REPO).as_posix()}"
        for folder in ("weights", "apps")
        for path in (REPO / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert package_files - names == set(), "list their patterns under [tool.setuptools.package-data]"
    assert shipped - names == set()
    assert "cnnviz/weights/checkpoints/epoch_000.npz" in names and "cnnviz/apps/explainer.py" in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)


def test_installed_cnnviz_finds_its_own_weights_and_app(venv, elsewhere):
    code = (
        "import cnnviz, json; from cnnviz.resources import app_entry_point, default_weights_path;"
        "print(json.dumps([cnnviz.__file__, str(default_weights_path()), str(app_entry_point())]))"
    )
    result = subprocess.run(
        [venv / "bin" / "python", "-c", code], capture_output=True, text=True, timeout=120, check=True, **elsewhere
    )
    package, weights, app = map(Path, __import__("json").loads(result.stdout))
    site_packages = next((venv / "lib").glob("python3*/site-packages"))
    for path in (package, weights, app):
        assert path.is_relative_to(site_packages) and path.is_file(), path
    version = subprocess.run(
        [venv / "bin" / "cnnviz", "--version"], capture_output=True, text=True, timeout=120, check=True, **elsewhere
    )
    assert version.stdout.startswith("cnnviz ")


def test_installed_cnnviz_serves_the_app_from_any_folder(venv, elsewhere):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [venv / "bin" / "cnnviz", "serve", "--address", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **elsewhere,
    )
    try:
        page = ""
        deadline = time.monotonic() + SERVE_TIMEOUT_SECONDS
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/explainer", timeout=30) as response:
                    page = response.read().decode("utf-8")
                    break
            except OSError:
                time.sleep(0.5)
        assert server.poll() is None, server.stdout.read()
        assert "cnnviz" in page and "bokeh" in page
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_installed_cnnviz_exports_the_site_from_any_folder(venv, elsewhere):
    result = subprocess.run(
        [venv / "bin" / "cnnviz", "export", "--out", "site"], capture_output=True, text=True, timeout=600, **elsewhere
    )
    assert result.returncode == 0, result.stderr
    site = elsewhere["cwd"] / "site"
    assert (site / "index.html").is_file() and (site / "single-file.html").is_file()
    with zipfile.ZipFile(site / "index.resources.zip") as archive:
        names = set(archive.namelist())
    assert {"weights/tiny_vgg.npz", "weights/tiny_vgg.json"} <= names
    assert "Traceback" not in result.stderr
