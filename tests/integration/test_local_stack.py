"""The embedded stack across the real HTTP emulator: built from the template, Lambda's semantics."""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest

from pipeline.ledger.ingest import ManifestObject
from pipeline.ledger.submit import submit_manifest
from pipeline.local.functions import (
    REGISTRY,
    EventSourceMapping,
)
from pipeline.local.poller import PollerOptions, SqsPoller
from pipeline.local.template import translate_template
from pipeline.local.workers import ProcessPool
from tests.integration import lambda_fakes
from tests.local_functions import fake_function, registered
from tests.queues import messages_held
from tests.wait import execution_ended, wait_until

pytestmark = pytest.mark.integration


# ------------------------------------------------------------------ built from the template


def test_every_template_resource_exists_locally(local_stack):
    # GIVEN the translated template WHEN the stack is up THEN each resource is there, configured
    template = translate_template(parameters={"CreateImagesBucket": "true"})
    created = set(local_stack.provisioned.resources)
    assert created == set(template["Resources"])
    assert local_stack.provisioned.skipped == {}

    s3 = boto3.client("s3")
    for output in ("InputBucketName", "ResultsBucketName", "ImagesBucketName"):
        s3.head_bucket(Bucket=local_stack.outputs[output])
    notification = s3.get_bucket_notification_configuration(
        Bucket=local_stack.outputs["InputBucketName"]
    )
    ingest_arn = local_stack.provisioned.resources["IngestQueue"].attributes["Arn"]
    assert [q["QueueArn"] for q in notification["QueueConfigurations"]] == [ingest_arn]


def test_queues_carry_redrive_size_and_policy_from_the_template(local_stack):
    sqs = boto3.client("sqs")
    work = sqs.get_queue_attributes(
        QueueUrl=local_stack.outputs["WorkQueueUrl"], AttributeNames=["All"]
    )["Attributes"]
    redrive = json.loads(work["RedrivePolicy"])
    assert int(redrive["maxReceiveCount"]) >= 5
    assert redrive["deadLetterTargetArn"].endswith("WorkDLQ")
    assert work["MaximumMessageSize"] == "1048576"
    assert work["VisibilityTimeout"] == "60"  # the test stack's parameter override
    ingest = sqs.get_queue_attributes(
        QueueUrl=local_stack.outputs["IngestQueueUrl"], AttributeNames=["Policy"]
    )["Attributes"]
    statement = json.loads(ingest["Policy"])["Statement"][0]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}


def test_state_machine_has_its_substitutions_resolved(local_stack):
    sfn = boto3.client("stepfunctions")
    definition = sfn.describe_state_machine(stateMachineArn=local_stack.outputs["StateMachineArn"])[
        "definition"
    ]
    assert "${" not in definition
    states = json.loads(definition)["States"]
    split_target = states["Split"]["Parameters"]["FunctionName"]
    assert split_target == local_stack.function("SplitFunction").arn + ":live"  # the alias


def test_functions_get_their_template_environment(local_stack):
    ingest = local_stack.function("IngestFunction")
    classify = local_stack.function("ClassifyFunction")
    assert ingest.handler == "handlers.ingest.handler"
    assert ingest.env["LAMBDAFLOW_STATE_MACHINE_ARN"] == local_stack.outputs["StateMachineArn"]
    assert classify.env["LAMBDAFLOW_RESULTS_BUCKET"] == local_stack.outputs["ResultsBucketName"]
    assert local_stack.outputs["ImagesBucketName"] in classify.env["LAMBDAFLOW_SOURCE_BUCKETS"]
    mapping = next(m for m in local_stack.provisioned.mappings if m.function is classify)
    assert mapping.reports_item_failures
    assert mapping.queue_url == local_stack.outputs["WorkQueueUrl"]
    # classify scales out (ScalingConfig): worker processes, min(workers=2, MaximumConcurrency)
    pools = [r for r in local_stack.runners if isinstance(r, ProcessPool)]
    assert [(p.mapping.function.logical_id, len(p.processes)) for p in pools] == [
        ("ClassifyFunction", 2)
    ]


# ------------------------------------------------------------------ the poller's semantics


@pytest.fixture
def queue_with_dlq(emulator):
    sqs = boto3.client("sqs")
    name = f"poll-{uuid.uuid4().hex[:8]}"
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})
    url = sqs.create_queue(
        QueueName=name, Attributes={"RedrivePolicy": redrive, "VisibilityTimeout": "30"}
    )["QueueUrl"]
    return sqs, url, dlq_url


def _poller(
    sqs, url, handler_name: str, batch_size: int = 10, redelivery_delay_s: float | None = 0
) -> SqsPoller:
    function = fake_function(handler_name)
    mapping = EventSourceMapping(
        logical_id="FakeMapping",
        queue_url=url,
        queue_arn="arn:aws:sqs:us-east-1:1:q",
        function=function,
        batch_size=batch_size,
        reports_item_failures=True,
    )
    handler = REGISTRY.handler_of(function)
    return SqsPoller(
        mapping,
        sqs=sqs,
        invoke=lambda event: handler(event, None),
        options=PollerOptions(wait_time_s=0, redelivery_delay_s=redelivery_delay_s),
    )


def _depth(sqs, url) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def _bodies(sqs, url) -> list[str]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return sorted(m["Body"] for m in messages)


def test_a_crashing_batch_is_redelivered_then_parked_in_the_dlq(queue_with_dlq):
    # GIVEN a message whose handler always raises, on a queue with maxReceiveCount 3
    sqs, url, dlq_url = queue_with_dlq
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    poller = _poller(sqs, url, "crash_on_poison")
    lambda_fakes.calls.clear()
    # WHEN the poller keeps polling until the queue's redrive has moved it
    wait_until(lambda: poller.poll_once() == 0 and _depth(sqs, dlq_url) == 1, 10)
    poller.poll_once()
    # THEN it was delivered exactly maxReceiveCount times, with a growing receive count,
    # and then it sits in the DLQ (not deleted, not delivered again)
    counts = [c["Records"][0]["attributes"]["ApproximateReceiveCount"] for c in lambda_fakes.calls]
    assert counts == ["1", "2", "3"]
    assert _bodies(sqs, dlq_url) == ["poison"]
    assert _bodies(sqs, url) == []


def test_partial_batch_response_deletes_only_the_successes(queue_with_dlq, caplog):
    sqs, url, _ = queue_with_dlq
    for body in ("ok-1", "bad", "ok-2"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    poller = _poller(sqs, url, "crash_on_poison", batch_size=3)
    handled = 0
    with caplog.at_level(logging.WARNING, logger="pipeline.local.poller"):
        while handled < 3:
            handled += poller.poll_once()
    assert _bodies(sqs, url) == ["bad"]
    # AND the poller says the failed message stays, and when it comes back
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "pipeline.local.poller"]
    assert warning == "fake: 1 of 3 messages failed; they come back after 0 s"


def test_a_failed_message_is_said_to_wait_out_the_queue_s_visibility_timeout(
    queue_with_dlq, caplog
):
    # GIVEN a poller that leaves failed messages to the visibility timeout, as Lambda does
    sqs, url, _ = queue_with_dlq
    sqs.send_message(QueueUrl=url, MessageBody="bad")
    poller = _poller(sqs, url, "crash_on_poison", redelivery_delay_s=None)
    # WHEN the message fails THEN the log says when it comes back: the queue's 30 s
    with caplog.at_level(logging.WARNING, logger="pipeline.local.poller"):
        wait_until(lambda: poller.poll_once() == 1, 10)
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "pipeline.local.poller"]
    assert warning == (
        "fake: 1 of 1 messages failed; they come back after the queue's visibility timeout (30 s)"
    )


@contextmanager
def _one_worker(
    emulator, handler: str, **limits: int
) -> Iterator[tuple[Any, str, str, ProcessPool]]:
    """A worker process polling a fresh queue (visibility 2 s, redrive after 2 receives).

    `limits` are the function's (`timeout_s`, `memory_mb`); yields (sqs, url, dlq_url, pool).
    """
    sqs = boto3.client("sqs")
    name = f"{handler.replace('_', '-')}-{uuid.uuid4().hex[:8]}"
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})
    url = sqs.create_queue(
        QueueName=name, Attributes={"RedrivePolicy": redrive, "VisibilityTimeout": "2"}
    )["QueueUrl"]
    function = fake_function(handler, name=name, logical_id="Worker", **limits)
    mapping = EventSourceMapping(
        logical_id="WorkerMapping",
        queue_url=url,
        queue_arn=f"arn:aws:sqs:us-east-1:1:{name}",
        function=function,
        batch_size=1,
        reports_item_failures=True,
        max_concurrency=2,
    )
    pool = ProcessPool(mapping=mapping, env=emulator.env, options=PollerOptions(), size=1)
    pool.start()
    try:
        yield sqs, url, dlq_url, pool
    finally:
        pool.stop()


def test_a_batch_past_the_function_timeout_is_killed_then_dead_lettered(emulator):
    # GIVEN a worker process whose handler hangs, for a function with a 1 s timeout
    with _one_worker(emulator, "hang_on_hang", timeout_s=1) as (sqs, url, dlq_url, pool):
        first_pid = pool.processes[0].pid
        # WHEN a message makes it hang
        sqs.send_message(QueueUrl=url, MessageBody="hang")
        # THEN the worker is killed at the timeout and replaced, the message comes back after
        # its visibility timeout, and after maxReceiveCount deliveries it is in the DLQ
        wait_until(lambda: _depth(sqs, dlq_url) == 1, 60, interval_s=0.5)
        assert pool.processes[0].pid != first_pid
        assert _bodies(sqs, dlq_url) == ["hang"]


def test_a_batch_past_the_function_memory_size_is_killed_then_dead_lettered(emulator):
    # GIVEN a worker process for a function of 256 MB whose handler holds 400 MB on "hog"
    limits = {"timeout_s": 30, "memory_mb": 256}
    with _one_worker(emulator, "hog_on_hog", **limits) as (sqs, url, dlq_url, pool):
        # WHEN a small message goes through, then one that needs more memory than the function has
        sqs.send_message(QueueUrl=url, MessageBody="small")
        wait_until(lambda: _depth(sqs, url) == 0 and _in_flight(sqs, url) == 0, 30)
        first_pid = pool.processes[0].pid
        sqs.send_message(QueueUrl=url, MessageBody="hog")
        # THEN the small one was settled by a worker that lived on; the big one ended its worker
        # on every delivery (never settled, though its handler returned success) and after
        # maxReceiveCount deliveries it is in the DLQ
        wait_until(lambda: _depth(sqs, dlq_url) == 1, 60, interval_s=0.5)
        assert pool.processes[0].pid != first_pid
        assert _bodies(sqs, dlq_url) == ["hog"]
        assert _bodies(sqs, url) == []


def _in_flight(sqs, url) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesNotVisible"])


# ------------------------------------------------------------------ S3 → ingest → Step Functions


def _executions(stack) -> list[dict]:
    sfn = boto3.client("stepfunctions")
    return sfn.list_executions(stateMachineArn=stack.outputs["StateMachineArn"])["executions"]


def test_dropping_a_manifest_starts_one_execution_and_a_duplicate_none(local_stack):
    # GIVEN an object dropped into the input bucket (a key that needs URL-decoding)
    s3 = boto3.client("s3")
    bucket, key = local_stack.outputs["InputBucketName"], f"ingest/{uuid.uuid4().hex} a+b.csv"
    etag = s3.put_object(Bucket=bucket, Key=key, Body=b"")["ETag"].strip('"')
    run = ManifestObject(bucket=bucket, key=key, etag=etag).run
    # THEN the ingest handler starts the execution named by the run id
    found = wait_until(lambda: [e for e in _executions(local_stack) if e["name"] == run], 20)
    sfn = boto3.client("stepfunctions")
    started = json.loads(sfn.describe_execution(executionArn=found[0]["executionArn"])["input"])
    assert started["manifest"]["key"] == key
    # WHEN the same object is dropped again (same ETag) and its notification delivered twice
    s3.put_object(Bucket=bucket, Key=key, Body=b"")
    ingest_url = local_stack.outputs["IngestQueueUrl"]
    notification = {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": bucket},
                    "object": {"key": key.replace(" ", "+"), "eTag": etag},
                },
            }
        ]
    }
    boto3.client("sqs").send_message(QueueUrl=ingest_url, MessageBody=json.dumps(notification))
    wait_until(lambda: messages_held(boto3.client("sqs"), ingest_url) == 0, 20)
    # THEN there is still exactly one execution for that run
    assert [e["name"] for e in _executions(local_stack)].count(run) == 1


# ------------------------------------------------------------------ Step Functions runs our code


def test_an_s3_manifest_is_copied_into_the_input_bucket_and_named_by_its_run(local_stack):
    s3 = boto3.client("s3")
    source = local_stack.outputs["ImagesBucketName"]
    s3.put_object(Bucket=source, Key="lists/m.csv", Body=b"")
    obj = submit_manifest(s3, local_stack.outputs["InputBucketName"], f"s3://{source}/lists/m.csv")
    assert obj.bucket == local_stack.outputs["InputBucketName"]
    assert re.fullmatch(r"manifests/[0-9a-f]{16}/m\.csv", obj.key)
    head = s3.head_object(Bucket=obj.bucket, Key=obj.key)
    assert obj.run == ManifestObject(obj.bucket, obj.key, head["ETag"].strip('"')).run
    # the copy is an ObjectCreated event like any upload: it starts the run
    wait_until(lambda: [e for e in _executions(local_stack) if e["name"] == obj.run], 20)


def test_manifests_of_one_name_never_overwrite_each_other_and_one_sent_twice_lands_once(
    emulator, tmp_path
):
    # GIVEN two different local manifests named m.csv (two folders), and one in another bucket
    s3 = boto3.client("s3")
    bucket, source = f"in-{uuid.uuid4().hex[:10]}", f"src-{uuid.uuid4().hex[:10]}"
    for name in (bucket, source):
        s3.create_bucket(Bucket=name)
    files = []
    for folder, row in (("a", b"b,one.jpg\n"), ("b", b"b,two.jpg\n")):
        (tmp_path / folder).mkdir()
        files.append(tmp_path / folder / "m.csv")
        files[-1].write_bytes(row)
    s3.put_object(Bucket=source, Key="lists/m.csv", Body=b"b,three.jpg\n")
    # WHEN each is submitted, and the first file and the S3 one twice
    sources = [*map(str, files), f"s3://{source}/lists/m.csv"]
    keys = [submit_manifest(s3, bucket, each).key for each in (*sources, *sources[::2])]
    # THEN each manifest has an object of its own, named as it was, holding its own rows; one
    # sent twice landed on the same object (so it follows the same run)
    assert len(set(keys[:3])) == 3
    assert keys[3:] == [keys[0], keys[2]]
    assert all(re.fullmatch(r"manifests/[0-9a-f]{16}/m\.csv", key) for key in keys)
    bodies = [s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys[:3]]
    assert bodies == [b"b,one.jpg\n", b"b,two.jpg\n", b"b,three.jpg\n"]


def test_a_state_machine_task_runs_the_python_handler_in_process(emulator, monkeypatch):
    # GIVEN a registered function backed by a test handler, behind a Task with a Catch
    monkeypatch.setenv("LAMBDAFLOW_TEST_MARKER", "from-the-template-env")
    name = f"describe-{uuid.uuid4().hex[:8]}"
    function = fake_function(
        "describe",
        name=name,
        logical_id="Describe",
        env={"LAMBDAFLOW_TEST_MARKER": "from-the-template-env"},
        timeout_s=60,
    )
    definition = {
        "StartAt": "Run",
        "States": {
            "Run": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": function.arn, "Payload.$": "$"},
                "OutputPath": "$.Payload",
                "Catch": [
                    {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}
                ],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    sfn = boto3.client("stepfunctions")
    machine = sfn.create_state_machine(
        name=name,
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]

    def run(payload: dict) -> dict:
        arn = sfn.start_execution(
            stateMachineArn=machine, name=uuid.uuid4().hex, input=json.dumps(payload)
        )["executionArn"]
        done = execution_ended(sfn, arn, 20)
        assert done["status"] == "SUCCEEDED"
        return json.loads(done["output"])

    with registered(function):
        # WHEN it runs THEN the output is what our handler computed, in this very process
        output = run({"numbers": [1, 2, 3]})
        assert output["doubled"] == [2, 4, 6]
        assert output["pid"] == os.getpid()
        assert output["function_name"] == name
        assert 0 < output["remaining_ms"] <= 60_000
        assert output["marker"] == "from-the-template-env"
        # AND a handler exception is a task failure whose error is the exception's class
        failed = run({"fail": True})
        assert failed["error"]["Error"] == "ValueError"
        assert "asked to fail" in failed["error"]["Cause"]
