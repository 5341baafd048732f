import pytest

from pipeline.ledger.runs import RunState, RunStatus
from pipeline.ledger.summary import (
    LedgerInvariantError,
    Prices,
    build_summary,
    estimate_cost,
    final_status,
    summary_key,
)


def _state(**overrides) -> RunState:
    values = {
        "run": "r1",
        "manifest": "s3://in/m.csv.gz",
        "status": RunStatus.RUNNING,
        "started_at": 100.0,
        "finished_at": 120.0,
        "lines_split": 100,
        "chunks_sent": 4,
        "is_split_done": True,
        "chunks_done": 4,
        "ok": 90,
        "failed": 10,
        "failed_by_stage": {"fetch": 7, "parse": 3},
        "failed_by_error": {"NoSuchKey": 7, "MalformedLine": 3},
        "compute_s": 40.0,
        "images": 97,
    }
    return RunState(**(values | overrides))


def test_complete_run_succeeds_and_adds_up():
    summary = build_summary(_state(), now=999.0)
    assert summary.status is RunStatus.SUCCEEDED
    assert summary.ok + summary.failed == summary.lines == 100
    assert (summary.seconds, summary.images_per_s, summary.chunks) == (20.0, 4.85, 4)
    assert summary.to_dict()["v"] == 1
    assert "reason" not in summary.to_dict()


def test_uncounted_lines_become_unprocessed_failures_and_a_partial_run():
    state = _state(
        chunks_done=3,
        ok=70,
        failed=5,
        failed_by_stage={"fetch": 5},
        failed_by_error={"NoSuchKey": 5},
    )
    summary = build_summary(state, now=999.0)
    assert summary.status is RunStatus.PARTIAL
    assert summary.ok + summary.failed == summary.lines
    assert summary.failed_by_stage == {"fetch": 5, "unprocessed": 25}
    assert summary.failed_by_error == {"NoSuchKey": 5, "NotProcessed": 25}
    assert summary.reason == "25 lines never counted"


def test_double_count_is_reported_not_hidden():
    with pytest.raises(LedgerInvariantError):
        build_summary(_state(ok=95), now=999.0)


@pytest.mark.parametrize(
    ("overrides", "status"),
    [
        ({}, RunStatus.SUCCEEDED),
        ({"reason": "truncated gzip at byte 42"}, RunStatus.PARTIAL),
        ({"is_split_done": False}, RunStatus.PARTIAL),
        ({"status": RunStatus.FAILED}, RunStatus.FAILED),
    ],
)
def test_final_status(overrides, status):
    assert final_status(_state(**overrides)) is status


def test_running_run_is_timed_until_now():
    summary = build_summary(_state(finished_at=None), now=150.0)
    assert summary.seconds == 50.0


def test_cost_uses_compute_seconds_and_memory():
    free = Prices(
        lambda_gb_s=1.0,
        memory_mb=1024,
        s3_get=0.0,
        s3_put=0.0,
        sqs_request=0.0,
        dynamodb_write_unit=0.0,
        lambda_request=0.0,
        sfn_transition=0.0,
        split_memory_mb=0,
    )
    cost = estimate_cost(_state(), free)
    assert cost == {
        "lambda": 40.0,
        "lambda_requests": 0.0,
        "s3": 0.0,
        "sqs": 0.0,
        "dynamodb": 0.0,
        "step_functions": 0.0,
        "total": 40.0,
    }


def test_cost_counts_requests_from_the_ledger():
    # GIVEN prices of one dollar per request of each kind and nothing else
    unit = Prices(
        lambda_gb_s=0.0,
        s3_get=1.0,
        s3_put=0.0,
        sqs_request=0.0,
        dynamodb_write_unit=0.0,
        lambda_request=1.0,
        sfn_transition=1.0,
        split_memory_mb=0,
    )
    # WHEN a 20 s run of 4 chunks is costed with a 5 s poll
    cost = estimate_cost(_state(), unit, poll_s=5.0)
    # THEN a GET per image plus per failed fetch (a 404 bills), never per parse failure
    assert cost["s3"] == 97 + 7
    # one invocation per chunk plus one Split pass
    assert cost["lambda_requests"] == 4 + 1
    # Start, Split + IsSplitDone, the wait's 5 states however long it waits (no polls), Finalize
    # + end
    assert cost["step_functions"] == 1 + 2 + 5 + 2
    assert cost["total"] == pytest.approx(sum(v for k, v in cost.items() if k != "total"))


def test_summary_cost_defaults_to_the_documented_prices():
    summary = build_summary(_state(), now=999.0)
    assert summary.cost_usd == estimate_cost(_state(), Prices())
    assert set(summary.cost_usd) >= {"lambda", "s3", "sqs", "step_functions", "total"}
    assert 0 < summary.cost_usd["total"] < 0.01


def test_summary_key_by_status():
    assert summary_key("r", RunStatus.SUCCEEDED) == "results/r/_SUCCESS.json"
    assert summary_key("r", RunStatus.PARTIAL) == "results/r/_PARTIAL.json"
    assert summary_key("r", RunStatus.FAILED) == "results/r/_PARTIAL.json"
