"""The command line: every user mistake ends in one sentence and exit code 2, never a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

import cnnviz
from cnnviz.cli import USER_ERROR_EXIT, main
from cnnviz.errors import CnnvizError


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit_:  # argparse's own usage errors and --help/--version
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_sentence(text: str) -> bool:
    return "Traceback" not in text and len(text.strip().splitlines()) == 1


def test_version_and_python_dash_m():
    result = subprocess.run(
        [sys.executable, "-m", "cnnviz", "--version"], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == f"cnnviz {cnnviz.__version__}"


def test_app_path_names_the_script_panel_serve_runs(capsys):
    code, out, _ = run_cli(capsys, "app-path")
    assert code == 0 and Path(out.strip()).is_file() and "servable()" in Path(out.strip()).read_text()


def test_train_without_the_train_extra_says_how_to_get_it(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "keras", None)  # `import keras` now fails as on a machine without it
    monkeypatch.delitem(sys.modules, "cnnviz.training.train", raising=False)
    code, _, err = run_cli(capsys, "train")
    assert code == USER_ERROR_EXIT and one_sentence(err)
    assert "pip install 'cnnviz[train]'" in err


def test_train_help_needs_no_train_extra(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "keras", None)
    code, out, err = run_cli(capsys, "train", "--help")
    assert code == 0 and "--input-size" in out and "Traceback" not in err


def test_train_recipe_help_holds_for_every_image_source():
    """The recipe is used at every input size (32–128), and --data and --shapes change some of its defaults."""
    import argparse

    from cnnviz.training.command import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    helps = {action.dest: action.help for action in parser._actions}
    assert "64" not in helps["crop_padding"] and "input-sized" in helps["crop_padding"]
    assert helps["crop_padding"].endswith("(default: 6; 4 for --data, 0 for --shapes)")
    assert helps["epochs"].endswith("(default: 120; 40 for --data, 8 for --shapes)")
    assert helps["seed"].endswith("(default: 0)")


def test_serve_on_a_busy_port_is_one_sentence(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        code, _, err = run_cli(capsys, "serve", "--address", "127.0.0.1", "--port", str(taken.getsockname()[1]))
    assert code == USER_ERROR_EXIT and one_sentence(err) and "cannot listen on" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve", "--port", "70000"], "out of range"),
        (["serve", "--port", "web"], "is not a whole number"),
        (["serve", "--num-procs", "-1"], "out of range"),
        (["serve", "--unused-session-lifetime", "0"], "out of range"),
        (["data", "--gallery", "-3"], "out of range"),
        (["data", "--gallery", "100000"], "out of range"),
        (["no-such-command"], "invalid choice"),
    ],
)
def test_bad_arguments_get_argparse_usage_and_exit_code_2(capsys, argv, message):
    code, _, err = run_cli(capsys, *argv)
    assert code == USER_ERROR_EXIT and message in err and "Traceback" not in err


def test_serve_checks_certificate_files_before_starting(capsys, tmp_path):
    code, _, err = run_cli(
        capsys, "serve", "--ssl-certfile", str(tmp_path / "cert.pem"), "--ssl-keyfile", str(tmp_path / "key.pem")
    )
    assert code == USER_ERROR_EXIT and one_sentence(err) and "no such file" in err


def test_export_into_a_file_is_one_sentence(capsys, tmp_path):
    (tmp_path / "site").write_text("a file, not a folder", encoding="utf-8")
    code, _, err = run_cli(capsys, "export", "--out", str(tmp_path / "site"))
    assert code == USER_ERROR_EXIT and one_sentence(err) and "is a file" in err


def test_serve_passes_the_classroom_options_to_panel(monkeypatch):
    import argparse

    from cnnviz import serve

    parser = argparse.ArgumentParser()
    serve.add_arguments(parser)
    args = parser.parse_args(
        ["--allow-websocket-origin", "class.example.org", "--allow-websocket-origin", "10.0.0.5:5006",
         "--prefix", "cnnviz", "--unused-session-lifetime", "60000", "--basic-auth", "secret"]
    )  # fmt: skip
    options = serve.classroom_options(args)
    assert options["websocket_origin"] == ["class.example.org", "10.0.0.5:5006"]
    assert options["prefix"] == "cnnviz" and options["unused_session_lifetime_milliseconds"] == 60000
    assert options["basic_auth"] == "secret" and options["cookie_secret"]


def test_serve_builds_each_tab_once_the_page_html_coming_from_one_kept_session(monkeypatch):
    """With Bokeh's default, a tab's page is built for its HTML and, when the server was too busy to answer its
    websocket before the session counted as unused, built again: a class joining at once paid twice."""
    import argparse

    import panel as pn

    from cnnviz import serve

    seen = {}

    def fake_serve(*_args, **_kwargs):
        seen["reuse"] = pn.config.reuse_sessions
        raise OSError(98, "taken")

    monkeypatch.setattr(pn, "serve", fake_serve)
    parser = argparse.ArgumentParser()
    serve.add_arguments(parser)
    with pytest.raises(CnnvizError):
        serve.run(parser.parse_args(["--port", "1"]))
    assert seen == {"reuse": True}
    assert pn.config.reuse_sessions is False  # for that server only: the other servers of this process build as before
