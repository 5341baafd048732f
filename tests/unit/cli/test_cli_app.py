"""The one error path, lazy commands, `--version`, and a `--help` that imports little."""

from __future__ import annotations

import gc
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from pipeline import __version__
from pipeline.cli import app
from pipeline.cli.app import COMMANDS, settle_start_up
from pipeline.cli.errors import CliError

runner = CliRunner()


def test_every_command_is_listed_with_its_own_one_line_help():
    group = typer.main.get_command(app)
    for name, (module, short) in COMMANDS.items():
        command = group.load(name)  # type: ignore[attr-defined]
        assert command.callback.__module__ == module
        assert command.help.strip().splitlines()[0] == short
    names = {i.name or i.callback.__name__ for i in app.registered_commands}
    assert names == set(COMMANDS)


def _entry_point(args: list[str], at_exit: str, env: dict[str, str] | None = None) -> list[str]:
    """What `lambdaflow ARGS` prints through the console script's entry point, in a fresh
    interpreter, and last the value of the expression `at_exit` as that process ends."""
    probe = (
        "import atexit, gc, os, sys\n"
        f"atexit.register(lambda: print({at_exit}))\n"
        "from pipeline.cli import main\n"
        f"sys.argv = ['lambdaflow', *{args!r}]\n"
        "main()\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, env=env
    )
    return run.stdout.splitlines()


def test_help_lists_every_command_without_importing_any():
    heavy = "('boto3', 'numpy', 'PIL', 'rich', 'moto', 'pipeline.cli.classify')"
    out = _entry_point(["--help"], f"'HEAVY', [m for m in {heavy} if m in sys.modules]")
    assert all(any(line.startswith(f"  {name} ") for line in out) for name in COMMANDS)
    assert out[-1] == "HEAVY []"


def test_help_at_80_columns_shows_every_one_line_help_whole():
    # GIVEN an 80-column terminal (click wraps help at 80 columns however wide it is)
    env = {**os.environ, "COLUMNS": "80"}
    # WHEN the commands are listed THEN each one-line help is there whole, never cut with "..."
    out = _entry_point(["--help"], "''", env=env)
    for name, (_, short) in COMMANDS.items():
        assert any(line.split(maxsplit=1) == [name, short] for line in out), name


def test_a_command_runs_with_collection_on_and_start_up_frozen():
    # GIVEN the console script's entry point, which pauses collection for start-up
    # WHEN it runs a command
    out = _entry_point(["version"], "'GC', gc.isenabled(), gc.get_freeze_count() > 0")
    # THEN the command's modules were frozen and garbage is collected again
    assert out[-1] == "GC True True"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts /proc/self/task")
def test_a_scan_starts_no_blas_thread(tmp_path):
    # GIVEN a manifest, and an environment that says nothing of OpenBLAS
    path = tmp_path / "m.csv"
    path.write_bytes(b"s3://bkt/a.jpg\n")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    # WHEN `lambdaflow scan` runs (it imports numpy)
    threads = "'THREADS', len(os.listdir('/proc/self/task')), 'numpy' in sys.modules"
    out = _entry_point(["scan", "--json", str(path)], threads, env=env)
    # THEN numpy's OpenBLAS started no thread of its own to spin beside the scan
    assert out[-1] == "THREADS 1 True"


@pytest.mark.parametrize("enabled", [True, False])
def test_start_up_is_settled_only_where_collection_was_paused(enabled):
    frozen = gc.get_freeze_count()
    if not enabled:
        gc.disable()
    try:
        settle_start_up()
        assert gc.isenabled()
        assert (gc.get_freeze_count() > frozen) is not enabled
    finally:
        gc.unfreeze()
        gc.enable()


@pytest.mark.parametrize("args", [["--version"], ["version"]])
def test_version(args):
    # `version` printed the bare number, `--version` "lambdaflow N": one line for both now
    result = runner.invoke(app, args)
    assert (result.exit_code, result.stdout) == (0, f"lambdaflow {__version__}\n")


@pytest.mark.parametrize(
    "args",
    [
        ["nope"],
        ["run"],
        ["scan", "--bogus", "x"],
        ["results"],
        ["classify", "--top", "x"],
        ["up", "--port", "-5"],
        ["up", "--port", "99999"],
        ["up", "--workers", "0"],
        ["results", "RUN", "--limit", "-1"],
        ["failures", "RUN", "--limit", "-5"],
        ["replay", "--limit", "-1", "--dry-run"],
        ["replay", "--timeout", "-1"],
        ["run", "m.csv", "--timeout", "-1"],
        ["run", "m.csv", "--workers", "-3"],
        ["demo", "--per-photo", "-1"],
        ["demo", "--workers", "0"],
        ["status", "--watch", "--interval", "-1"],
        ["traces", "RUN", "--chunk", "-1"],
    ],
)
def test_usage_mistakes_are_one_line_and_exit_2(args):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "--help" in lines[0]


def test_every_numeric_option_has_a_range():
    # a negative --limit crashed in islice, a negative --timeout or --workers was taken as given
    group = typer.main.get_command(app)
    unbounded = [
        f"{name} {param.opts[0]}"
        for name in COMMANDS
        for param in group.load(name).params  # type: ignore[attr-defined]
        if param.type.name in {"integer", "float"}
    ]
    assert unbounded == []


def test_the_no_region_hint_names_a_variable_the_sdk_reads(tmp_path):
    # GIVEN no region anywhere: no AWS variable, no AWS config file
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LAMBDAFLOW_"))}
    env["AWS_CONFIG_FILE"] = str(tmp_path / "none")
    lambdaflow = str(Path(sys.executable).parent / "lambdaflow")
    done = subprocess.run(
        [lambdaflow, "status", "--stack", "some-stack"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: no AWS region: export AWS_")
    variable = re.search(r"export (AWS_\w+)", line).group(1)
    # WHEN the person exports what it says THEN the SDK has a region (AWS_REGION gave none)
    region = "import boto3; print(boto3.session.Session().region_name)"
    probe = subprocess.run(
        [sys.executable, "-c", region],
        env={**env, variable: "eu-west-3"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert probe.stdout.strip() == "eu-west-3"


def _boom(kind: str) -> None:
    if kind == "unexpected":
        raise RuntimeError("the disk\nis on fire")
    if kind == "ctrl-c":
        raise KeyboardInterrupt
    raise CliError("no such thing", 1)


@pytest.fixture
def boom_app():
    app.command("boom-for-test")(_boom)
    yield
    app.registered_commands[:] = [i for i in app.registered_commands if i.callback is not _boom]


def _invoke_boom(*args: str):
    return runner.invoke(app, ["boom-for-test", *args])


def test_an_unexpected_error_is_one_line_that_says_how_to_see_the_traceback(boom_app):
    result = _invoke_boom("unexpected")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: unexpected RuntimeError: the disk is on fire (run with --debug for the traceback)"
    ]
    debug = _invoke_boom("unexpected", "--debug")
    assert "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.splitlines()[-1].startswith("error: unexpected RuntimeError")


def test_an_anticipated_error_is_its_message_and_code(boom_app):
    result = _invoke_boom("anticipated")
    assert (result.exit_code, result.stderr) == (1, "error: no such thing\n")


def test_a_ctrl_c_the_command_did_not_answer_is_said_and_exits_130(boom_app):
    # typer alone would exit 130 without a word
    result = _invoke_boom("ctrl-c")
    assert (result.exit_code, result.stderr) == (130, "interrupted\n")
