"""What the CLI draws keeps every value whole at any terminal width, 80 columns included.

A value rich cuts to fit ("e59b…", or a table cropped at the right edge) is lost to the person
reading it, and run ids, counts and failure messages are what they act on. Each view is drawn
into a console of a given width and read back cell by cell.
"""

from __future__ import annotations

import io
import time

import pytest
from rich.console import Console, RenderableType

from pipeline.cli.demo import failures_table, short_message
from pipeline.cli.replay import failure_queue_warnings, replay_table
from pipeline.cli.run_view import RunProgress, summary_table
from pipeline.cli.status import COLUMNS, NO_RUNS, render_table, watch
from pipeline.failures import FailureRecord, Stage
from pipeline.ledger.runs import RunState, RunStatus
from pipeline.replay.failure_drain import AT_QUOTA, LEASE_BUSY
from pipeline.replay.replayer import RunReplay

RUN = "e59b3317ac0753875590"
MANIFEST = "s3://lambdaflow-input-123456789012-us-east-1/manifests/demo-manifest.csv.gz"
INVENTORY = (
    "s3://lambdaflow-input-123456789012-us-east-1/inventory/images-bucket/all-versions/"
    "2026-12-05T01-00Z/manifest.json"
)
"""Longer than 80 columns: folded, never cut."""
WIDTHS = (80, 120, 200)


def draw(renderable: RenderableType, width: int) -> list[str]:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(renderable)
    return out.getvalue().splitlines()


def column(lines: list[str], index: int) -> str:
    """Column `index` of a boxed table's body, its pieces joined, whitespace left out."""
    pieces = (line.split("│")[index + 1] for line in lines if line.count("│") > index + 1)
    return "".join("".join(piece.split()) for piece in pieces)


def one_line_cells(lines: list[str]) -> set[str]:
    """Every cell text that sits whole on one line."""
    return {cell.strip() for line in lines for cell in line.split("│")}


def whole(text: str) -> str:
    return "".join(text.split())


def status_row(**overrides: object) -> dict:
    row = {
        "run": RUN,
        "manifest": MANIFEST,
        "status": "SUCCEEDED",
        "is_split_done": True,
        "is_split_paused": False,
        "eta_s": None,
        "lines_split": 1_957_560_320,
        "chunks_done": 3_915_121,
        "chunks_sent": 3_915_121,
        "ok": 1_957_560_000,
        "failed": 320,
        "images_per_s": 97.94,
        "cost_usd": 1234.5678,
        "reason": None,
    }
    return row | overrides


@pytest.mark.parametrize("width", WIDTHS)
def test_status_shows_every_value_whole_as_a_table_or_a_few_lines_a_run(width):
    rows = [
        status_row(),
        status_row(run="0123456789abcdef0123", status="RUNNING", is_split_done=False, eta_s=3_700),
        status_row(
            run="fedcba98765432100000",
            manifest=INVENTORY,
            status="PARTIAL",
            reason="the manifest is gone",
        ),
    ]
    lines = draw(render_table(rows, width), width)
    assert max(len(line) for line in lines) <= width
    is_table = any("lambdaflow runs" in line for line in lines)
    assert is_table == (width >= 200)  # 80 and 120: too narrow for these counts side by side
    if is_table:
        shown = one_line_cells(lines)
        values = {"1,957,560,320", "3,915,121/3,915,121", "3,915,121/3,915,121+", "1h01m"}
        assert COLUMNS.index("manifest") == 1
        manifests = whole(column(lines, 1))
    else:
        shown = {word for line in lines for word in line.split()}
        values = {"lines=1,957,560,320", "chunks=3,915,121/3,915,121+", "ETA=1h01m"}
        values |= {"ok=1,957,560,000", "failed=320", "img/s=97.9", "cost=$1234.5678"}
        manifests = whole("".join(line for line in lines if not line.startswith(("  l", "  r"))))
    assert values <= shown
    for row in rows:
        assert {row["run"], row["status"]} <= shown
    assert manifests.count(whole(MANIFEST)) == 2
    assert manifests.count(whole(INVENTORY)) == 1
    assert any("the manifest is gone" in line for line in lines)  # the caption, or the run's


@pytest.mark.parametrize("width", WIDTHS)
def test_status_says_when_split_is_paused_by_a_full_work_queue(width):
    paused = status_row(status="RUNNING", is_split_done=False, is_split_paused=True, eta_s=60)
    text = " ".join(draw(render_table([paused, status_row()], width), width))
    assert text.count("split paused: queue full") == 1


def test_status_of_a_small_run_is_a_table_where_its_manifest_gets_40_columns():
    row = status_row(
        lines_split=306, chunks_done=4, chunks_sent=4, ok=300, failed=6, cost_usd=0.0005
    )
    lines = draw(render_table([row], 140), 140)
    assert any("lambdaflow runs" in line for line in lines)
    assert whole(column(lines, COLUMNS.index("manifest"))) == whole(MANIFEST)
    assert {RUN, "306", "4/4", "300", "6", "97.9", "0.0005"} <= one_line_cells(lines)
    narrow = draw(render_table([row], 130), 130)
    assert narrow[0].split() == [RUN, "SUCCEEDED"]
    assert "lines=306 chunks=4/4 ok=300 failed=6 img/s=97.9 ETA=- cost=$0.0005" in narrow[1]


def test_status_watch_redraws_until_the_run_ends_and_leaves_it_whole_at_80_columns():
    readings = iter(
        [
            [status_row(status="RUNNING", is_split_done=False, eta_s=90)],
            [status_row(status="RUNNING", eta_s=30)],
            [status_row()],
        ]
    )
    out = io.StringIO()
    last = watch(lambda: next(readings), Console(file=out, width=80, color_system=None), 0.0)
    assert [row["status"] for row in last] == ["SUCCEEDED"]
    final = out.getvalue().splitlines()  # a console that is no terminal shows the last reading
    assert final[0].split() == [RUN, "SUCCEEDED"]
    assert "lines=1,957,560,320" in final[1].split()
    assert max(len(line) for line in final) <= 80


@pytest.mark.parametrize("width", WIDTHS)
def test_status_of_an_empty_ledger_says_so_and_how_to_start_a_run(width):
    assert "".join(draw(render_table([], width), width)).strip() == NO_RUNS


@pytest.mark.parametrize("width", WIDTHS)
def test_the_run_summary_folds_the_manifest_uri_instead_of_cutting_it(width):
    summary = {"run": RUN, "status": "SUCCEEDED", "manifest": MANIFEST * 2, "lines": 306}
    summary |= {"ok": 300, "failed": 6, "chunks": 4, "seconds": 3.1, "images_per_s": 97.9}
    lines = draw(summary_table(summary), width)
    assert whole(column(lines, 1)).startswith(whole(MANIFEST) * 2)
    assert max(len(line) for line in lines) <= width


@pytest.mark.parametrize("width", WIDTHS)
def test_the_run_progress_keeps_the_run_id_and_the_line_counts(width):
    out = io.StringIO()
    view = RunProgress(Console(file=out, width=width, color_system=None), RUN)
    state = RunState(
        run=RUN,
        manifest=MANIFEST,
        status=RunStatus.RUNNING,
        started_at=time.time() - 3,
        lines_split=3_060,
        chunks_sent=40,
        is_split_done=True,
        chunks_done=40,
        ok=3_000,
        failed=60,
        images=3_060,
    )
    with view.shown():
        view.update(state)
    text = out.getvalue()
    assert f"run {RUN}" in text
    assert "3,060/3,060 lines" in text
    assert {"chunks=40/40", "ok=3,000", "failed=60"} <= set(text.split())
    assert any(word.startswith("img/s=") for word in text.split())
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width


def failure(line: int, error: str, message: str, stage: Stage = Stage.FETCH) -> FailureRecord:
    return FailureRecord(
        run=RUN,
        line=line,
        bucket="b",
        key="k",
        stage=stage,
        error=error,
        message=message,
        retryable=False,
    )


@pytest.mark.parametrize("width", WIDTHS)
def test_the_demo_failures_table_keeps_every_message_and_error_whole(width):
    records = [
        failure(
            43,
            "NoSuchKey",
            "cannot read s3://lambdaflow-images-123456789012-us-east-1/demo/missing/lost-0.jpg: "
            "NoSuchKey: The specified key does not exist.",
        ),
        failure(
            258,
            "BucketNotAllowed",
            "bucket 'somebody-elses-bucket' is not on the allowlist "
            "(LAMBDAFLOW_SOURCE_BUCKETS): the image was not read",
        ),
        failure(215, "BadUri", "line 215: 'x' does not start with s3://", Stage.PARSE),
    ]
    planted = {43: "missing key", 258: "bucket off the allowlist", 215: "malformed line"}
    lines = draw(failures_table(records, planted), width)
    assert max(len(line) for line in lines) <= width
    assert whole(column(lines, 4)) == "".join(whole(short_message(r.message)) for r in records)
    assert whole(column(lines, 3)) == "NoSuchKeyBucketNotAllowedBadUri"
    assert whole(column(lines, 1)) == whole("".join(planted.values()))
    assert {"43", "258", "215", "fetch", "parse"} <= one_line_cells(lines)


def test_a_replay_whose_drain_could_not_reach_every_message_says_so_per_run():
    reports = [
        RunReplay(run=RUN, replay_round=2, failure_queue_left=AT_QUOTA),
        RunReplay(run="0123456789abcdef0123", replay_round=1),
        RunReplay(run="fedcba9876543210fedc", replay_round=4, failure_queue_left=LEASE_BUSY),
    ]
    quota, busy = failure_queue_warnings(reports)
    assert quota.startswith(f"run {RUN}: {AT_QUOTA}, so failure messages")
    assert busy.startswith(f"run fedcba9876543210fedc: {LEASE_BUSY}, so failure messages")
    assert reports[0].to_dict()["failure_queue_left"] == AT_QUOTA  # and in --json
    assert reports[1].to_dict()["failure_queue_left"] is None


@pytest.mark.parametrize("width", WIDTHS)
def test_the_replay_table_keeps_run_ids_and_every_error_count(width):
    by_error = {"NoSuchKey": 1_204_311, "SlowDown": 93_112, "TruncatedImage": 17, "Timeout": 4}
    reports = [
        RunReplay(run=RUN, replay_round=2, lines=tuple(range(1_297_444)), chunks=2_595),
        RunReplay(run="0123456789abcdef0123", replay_round=1, by_error=by_error, unreplayable=3),
    ]
    lines = draw(replay_table(reports, dry_run=True), width)
    assert max(len(line) for line in lines) <= width
    assert {RUN, "0123456789abcdef0123", "1297444", "2595"} <= one_line_cells(lines)
    errors = "NoSuchKey 1204311, SlowDown 93112, Timeout 4, TruncatedImage 17"
    assert whole(column(lines, 5)) == whole(f"-{errors} (+3 parse, not replayable)")
