"""Common mistakes, typed as a person would, against the local stack: one line, the right code.

Each command runs as a subprocess with no AWS or LAMBDAFLOW variable exported: the stack is
found through the `.lambdaflow/stack.json` a `lambdaflow up` publishes (here: the session's
stack), in the working directory or a parent.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import boto3
import pytest

from pipeline.ledger.table import RunLedger
from pipeline.local.stack import LocalStack
from pipeline.local.state import STATE_FILE
from pipeline.local.workers import ProcessPool
from tests import photos
from tests.wait import wait_until

pytestmark = pytest.mark.e2e

LAMBDAFLOW = str(Path(sys.executable).parent / "lambdaflow")
PHOTO = Path(__file__).resolve().parents[1] / "fixtures" / "images" / "coffee.jpg"
T = TypeVar("T")


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LAMBDAFLOW_"))}


def _lambdaflow(*args: str, cwd: Path, timeout_s: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [LAMBDAFLOW, *args],
        cwd=cwd,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def _one_line(done: subprocess.CompletedProcess) -> str:
    """The single stderr line of a failed command (and no traceback anywhere)."""
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.fixture
def subdir(stack_dir) -> Path:
    """A folder inside the directory where the stack was published."""
    path = stack_dir / "work" / "deeper"
    path.mkdir(parents=True)
    return path


@pytest.fixture
def images_bucket(local_stack) -> str:
    return local_stack.outputs["ImagesBucketName"]


def test_run_of_a_missing_file_is_one_line_and_exits_1(subdir):
    done = _lambdaflow("run", "no-such-manifest.csv", cwd=subdir)
    assert done.returncode == 1
    assert _one_line(done) == "error: no-such-manifest.csv: no such file"


def test_run_of_a_missing_s3_object_is_one_line_and_exits_1(subdir, images_bucket):
    done = _lambdaflow("run", f"s3://{images_bucket}/nothing-here.csv.gz", cwd=subdir)
    assert done.returncode == 1
    assert "NoSuchKey" in _one_line(done)


@pytest.mark.parametrize(
    ("name", "what"), [("photo.jpg", "a JPEG image"), ("p.png", "a PNG image")]
)
def test_run_of_an_image_is_refused_at_once_naming_it(subdir, name, what):
    path = subdir / name
    if name.endswith(".png"):
        path.write_bytes(photos.variants("coffee")["png"])
    else:
        path.write_bytes(PHOTO.read_bytes())
    done = _lambdaflow("run", str(path), cwd=subdir)
    assert done.returncode == 1
    assert _one_line(done).endswith(f"{what}, not a manifest")


def test_status_finds_the_stack_of_a_parent_directory_without_exported_variables(subdir):
    done = _lambdaflow("status", "--json", cwd=subdir)
    assert done.returncode == 0, done.stderr
    assert isinstance(json.loads(done.stdout), list)


@pytest.mark.parametrize(
    "command", [["results"], ["failures"], ["status"], ["traces"], ["replay", "--run"]]
)
def test_an_unknown_run_id_exits_1_with_the_reason(subdir, command):
    done = _lambdaflow(*command, "0123456789abcdef0123", cwd=subdir)
    assert done.returncode == 1
    line = _one_line(done)
    assert line.startswith("error: ")
    assert "0123456789abcdef0123" in line
    assert done.stdout == ""


def test_scan_and_classify_read_s3_through_the_found_stack(subdir, images_bucket):
    s3 = boto3.client("s3")
    key = f"mistakes/{uuid.uuid4().hex}"
    s3.put_object(Bucket=images_bucket, Key=f"{key}/coffee.jpg", Body=PHOTO.read_bytes())
    manifest = f"s3://{images_bucket}/{key}/coffee.jpg\n".encode() * 3
    s3.put_object(Bucket=images_bucket, Key=f"{key}/m.csv.gz", Body=gzip.compress(manifest))
    scanned = _lambdaflow("scan", f"s3://{images_bucket}/{key}/m.csv.gz", "--json", cwd=subdir)
    assert scanned.returncode == 0, scanned.stderr
    assert json.loads(scanned.stdout)["records"] == 3
    labelled = _lambdaflow(
        "classify", f"s3://{images_bucket}/{key}/coffee.jpg", "--json", cwd=subdir
    )
    assert labelled.returncode == 0, labelled.stderr
    assert json.loads(labelled.stdout)[0]["labels"][0][0] == "espresso"


def test_read_only_commands_without_a_stack_say_how_to_start_one(tmp_path):
    for command in (["results", "abc"], ["failures", "abc"], ["replay", "--dry-run"]):
        done = _lambdaflow(*command, cwd=tmp_path)
        assert done.returncode == 1
        assert "lambdaflow up" in _one_line(done)


def test_run_without_a_stack_says_it_starts_a_throwaway_one(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("s3://some-bucket/a.jpg\n")
    done = _lambdaflow("run", str(manifest), "--json", "--workers", "1", cwd=tmp_path)
    assert "Traceback" not in done.stderr
    assert "throwaway local stack" in done.stderr
    assert json.loads(done.stdout)["lines"] == 1


@contextmanager
def _workers_frozen(stack: LocalStack) -> Iterator[None]:
    """The stack's worker processes stopped (SIGSTOP) inside, continued (SIGCONT) after."""
    pids = [p.pid for r in stack.runners if isinstance(r, ProcessPool) for p in r.processes]
    assert pids
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


def _ctrl_c_once(
    process: subprocess.Popen, ready: Callable[[], T], what: str, timeout_s: float = 60
) -> tuple[T, str]:
    """Once `ready()` answers, press Ctrl-C on `process`: that answer, and the command's last line.

    The command must end with exit code 130 and no traceback. It runs with PYTHONFAULTHANDLER
    set: if it outlives `timeout_s` after the Ctrl-C, SIGABRT makes it print every thread's
    stack, which the failure carries.
    """
    try:
        answer = wait_until(ready, 120, what=what)
        process.send_signal(signal.SIGINT)
        try:
            stderr = process.communicate(timeout=timeout_s)[1]
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)
            stacks = process.communicate(timeout=30)[1]
            pytest.fail(f"still running {timeout_s:.0f} s after Ctrl-C; its threads:\n{stacks}")
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130
    assert "Traceback" not in stderr
    return answer, stderr.strip().splitlines()[-1]


@contextmanager
def _ctrl_c_as_in_a_terminal() -> Iterator[None]:
    """Children started inside begin with SIGINT at its default, as under a terminal.

    A test runner started in the background by a shell without job control ignores SIGINT, and
    an ignored signal stays ignored across exec: Python then installs no KeyboardInterrupt
    handler, and a Ctrl-C test would prove nothing. A handled signal is reset on exec.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _interruptible(args: list[str], cwd: Path) -> subprocess.Popen:
    with _ctrl_c_as_in_a_terminal():
        return subprocess.Popen(
            [LAMBDAFLOW, *args],
            cwd=cwd,
            env={**_clean_env(), "PYTHONFAULTHANDLER": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


def test_ctrl_c_during_run_says_the_run_continues_and_how_to_follow_it(
    local_stack, stack_dir, images_bucket
):
    # GIVEN a run of 120 photos in progress on the stack published here, which cannot end
    # before the Ctrl-C: the stack's classify workers are frozen until then (a run of photos
    # this size can end between two polls of the ledger on a busy machine)
    s3 = boto3.client("s3")
    key = f"mistakes/{uuid.uuid4().hex}/coffee.jpg"
    s3.put_object(Bucket=images_bucket, Key=key, Body=PHOTO.read_bytes())
    manifest = stack_dir / f"ctrl-c-{uuid.uuid4().hex[:8]}.csv"
    manifest.write_text(f"s3://{images_bucket}/{key}\n" * 120)
    ledger = RunLedger(boto3.client("dynamodb"), local_stack.outputs["RunsTableName"])
    with _workers_frozen(local_stack):
        process = _interruptible(["run", str(manifest)], stack_dir)
        run, last = _ctrl_c_once(
            process,
            # WHEN the person presses Ctrl-C once the run started
            lambda: next((r.run for r in ledger.list_runs() if manifest.name in r.manifest), None),
            "the run to start",
        )
    # THEN one line says the run goes on, and how to follow it; the exit code is 130
    assert f"run {run} continues on the stack" in last
    assert f"lambdaflow status {run} --watch" in last


def test_ctrl_c_during_the_upload_stops_at_once_and_says_what_became_of_the_run(
    local_stack, stack_dir
):
    # GIVEN `lambdaflow run` of a file large enough that its upload takes a while, caught in
    # the middle of that upload (its multipart upload is open on the input bucket); a text
    # file Split would refuse at once, should the upload beat the Ctrl-C and start a run
    manifest = stack_dir / f"big-{uuid.uuid4().hex[:8]}.csv"
    line = b"a note, not a line that names an image\n"
    with manifest.open("wb") as out:
        for _ in range(160):
            out.write(line * ((1 << 20) // len(line)))
    s3 = boto3.client("s3")
    bucket = local_stack.outputs["InputBucketName"]
    process = _interruptible(["run", str(manifest)], stack_dir)
    _, last = _ctrl_c_once(
        process,
        # WHEN the person presses Ctrl-C once the upload started
        lambda: any(
            u["Key"].endswith(manifest.name)
            for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        ),
        "the manifest's upload to start",
        timeout_s=20,
    )
    # THEN the command ends at once, in one line that says whether a run started; code 130
    assert "interrupted" in last
    assert "upload" in last


def _aws_env(**extra: str) -> dict[str, str]:
    """The SDK pointed at the emulator as if it were AWS itself (no local state file)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAMBDAFLOW_")}
    return {**env, **extra}


@pytest.fixture
def deployed_stack_name(local_stack) -> str:
    """A CloudFormation stack whose Outputs are the session stack's: a "deployed" stack."""
    name = f"deployed-{uuid.uuid4().hex[:8]}"
    template = {
        "Resources": {"Marker": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {k: {"Value": v} for k, v in local_stack.outputs.items()},
    }
    boto3.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))
    return name


@pytest.mark.parametrize("how", ["option", "environment"])
def test_a_deployed_stack_is_reached_by_name_from_any_directory(tmp_path, deployed_stack_name, how):
    args, env = (["--stack", deployed_stack_name], _aws_env())
    if how == "environment":
        args, env = ([], _aws_env(LAMBDAFLOW_STACK=deployed_stack_name))

    def lambdaflow(*command: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [LAMBDAFLOW, *command, *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    listed = lambdaflow("status", "--json")
    assert listed.returncode == 0, listed.stderr
    assert isinstance(json.loads(listed.stdout), list)
    unknown = lambdaflow("results", "0123456789abcdef0123")
    assert unknown.returncode == 1
    assert "no run '0123456789abcdef0123'" in _one_line(unknown)


def test_an_unknown_stack_name_is_one_line(tmp_path):
    done = subprocess.run(
        [LAMBDAFLOW, "results", "abc", "--stack", "no-such-stack"],
        cwd=tmp_path,
        env=_aws_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "no stack 'no-such-stack'" in _one_line(done)


def test_split_refuses_an_image_dropped_as_a_manifest_in_its_first_block(subdir, images_bucket):
    # GIVEN a JPEG in S3, given to `run` as a manifest (no local check: Split reads it)
    key = f"mistakes/{uuid.uuid4().hex}/photo.jpg"
    boto3.client("s3").put_object(Bucket=images_bucket, Key=key, Body=PHOTO.read_bytes())
    done = _lambdaflow("run", f"s3://{images_bucket}/{key}", "--json", cwd=subdir)
    # THEN the run ends at once as partial, naming what the file is, and `run` exits 1
    summary = json.loads(done.stdout)
    assert (summary["status"], summary["lines"], summary["chunks"]) == ("PARTIAL", 0, 0)
    assert summary["reason"] == "NotAManifest: a JPEG image, not a manifest"
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].endswith("a JPEG image, not a manifest")


def test_up_on_a_busy_port_is_one_line_naming_it_and_exits_1_at_once(tmp_path):
    # GIVEN a port another program listens on
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        # WHEN `lambdaflow up` is asked for it (it used to wait forever, deaf to Ctrl-C)
        done = _lambdaflow("up", "--port", str(port), cwd=tmp_path, timeout_s=60)
    # THEN one line names the port, the exit code is 1, and nothing is published
    assert done.returncode == 1
    assert _one_line(done) == f"error: cannot listen on 127.0.0.1:{port}: Address already in use"
    assert not (tmp_path / STATE_FILE).exists()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_up_s_start_up_stops_it_with_130(tmp_path, signum):
    # GIVEN `lambdaflow up` caught starting: its emulator listens, its stack is not provisioned
    port = _free_port()
    process = _interruptible(["up", "--port", str(port), "--workers", "1"], tmp_path)
    try:
        wait_until(lambda: _listening(port) or process.poll() is not None, 120, what="emulator")
        assert not (tmp_path / STATE_FILE).exists(), "start-up ended before the signal"
        # WHEN Ctrl-C (or SIGTERM) reaches it THEN it stops there, says so, and exits 130
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert (process.returncode, stdout, stderr.strip()) == (130, "", "interrupted")
    assert not (tmp_path / STATE_FILE).exists()
    assert not _listening(port)
