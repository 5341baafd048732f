"""Pure logic of the embedded stack and of ingest: no emulator, no sockets."""

from __future__ import annotations

import json

import pytest

from pipeline.ledger.finalize import _partial_reason
from pipeline.ledger.ingest import ManifestObject, execution_input, iter_created_objects
from pipeline.ledger.progress import check_progress
from pipeline.ledger.runs import RunState, RunStatus
from pipeline.local.intrinsics import PhysicalResource, Resolver, TemplateError, find_dependencies
from pipeline.local.poller import failed_message_ids


def _resolver() -> Resolver:
    resolver = Resolver(
        parameters={"Env": "prod", "AWS::Region": "eu-west-1", "List": "a,b"},
        conditions={
            "IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]},
            "IsDev": {"Fn::Not": [{"Condition": "IsProd"}]},
        },
    )
    resolver.resources["Queue"] = PhysicalResource(
        ref="http://q", attributes={"Arn": "arn:aws:sqs:eu-west-1:1:q", "QueueName": "q"}
    )
    return resolver


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ({"Ref": "Queue"}, "http://q"),
        ({"Fn::GetAtt": ["Queue", "Arn"]}, "arn:aws:sqs:eu-west-1:1:q"),
        ({"Fn::GetAtt": "Queue.QueueName"}, "q"),
        ({"Fn::Sub": "${AWS::Region}/${Queue.QueueName}/${!Literal}"}, "eu-west-1/q/${Literal}"),
        ({"Fn::Sub": ["${x}-${Env}", {"x": {"Ref": "Queue"}}]}, "http://q-prod"),
        ({"Fn::Join": [",", ["a", {"Ref": "Env"}]]}, "a,prod"),
        ({"Fn::Join": [{"Fn::Sub": "-${Env}-"}, ["a", "b"]]}, "a-prod-b"),
        ({"Fn::If": ["IsDev", "dev", "not-dev"]}, "not-dev"),
        ({"Fn::Select": [1, {"Fn::Split": [",", {"Ref": "List"}]}]}, "b"),
        ([1, {"Ref": "AWS::NoValue"}, 2], [1, 2]),
        ({"Keep": 1, "Drop": {"Ref": "AWS::NoValue"}}, {"Keep": 1}),
    ],
)
def test_resolver_evaluates_intrinsics(expr, expected):
    assert _resolver().resolve(expr) == expected


def test_resolver_refuses_what_it_cannot_evaluate():
    with pytest.raises(TemplateError, match="Fn::ImportValue"):
        _resolver().resolve({"Fn::ImportValue": "x"})
    with pytest.raises(TemplateError, match="Missing"):
        _resolver().resolve({"Ref": "Missing"})


def test_find_dependencies_sees_refs_getatts_and_sub_variables():
    props = {
        "A": {"Ref": "One"},
        "B": [{"Fn::GetAtt": ["Two", "Arn"]}],
        "C": {"Fn::Sub": "${Three.Arn}-${AWS::Region}"},
    }
    assert find_dependencies(props) == {"One", "Two", "Three", "AWS::Region"}


@pytest.mark.parametrize(
    ("outcome", "reports", "expected"),
    [
        (RuntimeError("boom"), True, {"a", "b"}),
        ({"batchItemFailures": []}, True, set()),
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, True, {"b"}),
        ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, True, {"a", "b"}),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, True, {"a", "b"}),
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, False, set()),
        (None, True, set()),
    ],
)
def test_failed_message_ids_follow_lambda_rules(outcome, reports, expected):
    assert failed_message_ids(["a", "b"], outcome, reports_item_failures=reports) == expected


def test_ingest_skips_the_test_event_and_decodes_keys():
    assert list(iter_created_objects({"Event": "s3:TestEvent", "Bucket": "b"})) == []
    notification = {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": "in"},
                    "object": {"key": "dir%2Fa+b%2B.csv", "eTag": "abc", "size": 3},
                },
            },
            {
                "eventName": "ObjectRemoved:Delete",
                "s3": {"bucket": {"name": "in"}, "object": {"key": "gone.csv"}},
            },
        ]
    }
    (obj,) = iter_created_objects(notification)
    assert (obj.bucket, obj.key, obj.etag, obj.size) == ("in", "dir/a b+.csv", "abc", 3)


def test_the_execution_input_is_a_pure_function_of_the_object():
    obj = ManifestObject(bucket="in", key="m.csv", etag="e1")
    assert execution_input(obj) == execution_input(ManifestObject("in", "m.csv", "e1"))
    assert execution_input(obj)["run"] != ManifestObject("in", "m.csv", "e2").run
    assert execution_input(obj)["manifest"]["uri"] == "s3://in/m.csv"


def _run_state(**counts):
    defaults = {
        "run": "r",
        "manifest": "s3://b/m.csv",
        "status": RunStatus.RUNNING,
        "started_at": 0.0,
    }
    return RunState(**{**defaults, **counts})


def test_progress_is_complete_only_when_split_is_done_and_every_chunk_counted():
    state = {"run": "r", "manifest": {}}
    running = _run_state(lines_split=10, chunks_sent=2, chunks_done=1, ok=5, is_split_done=True)
    done = _run_state(
        lines_split=10, chunks_sent=2, chunks_done=2, ok=9, failed=1, is_split_done=True
    )
    assert not check_progress(state, running, now=1, stall_timeout_s=60, poll_s=3)["complete"]
    after = check_progress(state, done, now=2, stall_timeout_s=60, poll_s=3)
    assert (after["complete"], after["stalled"], after["poll_s"]) == (True, False, 3)
    assert after["heartbeat_s"] == 60  # the wait's HeartbeatSecondsPath: the stall timeout


def test_progress_stalls_only_when_nothing_was_counted_for_the_timeout():
    reading = _run_state(lines_split=10, chunks_sent=2, chunks_done=1, ok=5, is_split_done=True)
    first = check_progress({"run": "r"}, reading, now=100, stall_timeout_s=60, poll_s=1)
    assert first["progress"]["changed_at"] == 100
    still = check_progress(first, reading, now=159, stall_timeout_s=60, poll_s=1)
    assert not still["stalled"]
    assert check_progress(still, reading, now=160, stall_timeout_s=60, poll_s=1)["stalled"]
    moved = _run_state(lines_split=10, chunks_sent=2, chunks_done=1, ok=6, is_split_done=True)
    assert not check_progress(still, moved, now=500, stall_timeout_s=60, poll_s=1)["stalled"]


def test_finalize_names_why_a_run_is_partial():
    cause = '{"errorType": "ManifestReadError", "errorMessage": "gzip broke at byte 9"}'
    failed = {"error": {"Error": "ManifestReadError", "Cause": cause}}
    assert _partial_reason(failed) == (
        "the run's execution failed: ManifestReadError: gzip broke at byte 9"
    )
    assert "stalled" in _partial_reason({"stalled": True})
    assert _partial_reason({"complete": True}) is None


def test_finalize_reads_the_message_out_of_a_long_cause():
    cause = json.dumps(
        {"errorType": "KeyError", "errorMessage": "'key'", "stackTrace": ["x" * 5000]}
    )
    reason = _partial_reason({"error": {"Error": "KeyError", "Cause": cause}})
    assert reason == "the run's execution failed: KeyError: 'key'"
