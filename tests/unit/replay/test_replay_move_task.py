"""On AWS the whole WorkDLQ goes back with SQS's own StartMessageMoveTask (moto lacks it)."""

from __future__ import annotations

import json

import boto3
from botocore.stub import Stubber

from pipeline.replay.replayer import Replayer, ReplayTargets

DLQ = "https://sqs.us-east-1.amazonaws.com/123456789012/work-dlq"
WORK = "https://sqs.us-east-1.amazonaws.com/123456789012/work"
RUN = "c" * 20


def test_the_whole_dlq_is_listed_then_moved_by_a_move_task():
    sqs = boto3.client(
        "sqs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    body = json.dumps({"v": 1, "run": RUN, "chunk": 7, "items": [[1, "b", "k"]]})
    message = {"MessageId": "m1", "ReceiptHandle": "h1", "Body": body}
    with Stubber(sqs) as stub:
        stub.add_response("receive_message", {"Messages": [message]})
        stub.add_response("receive_message", {"Messages": []})
        stub.add_response(
            "change_message_visibility_batch",
            {"Successful": [{"Id": "0"}], "Failed": []},
            {
                "QueueUrl": DLQ,
                "Entries": [{"Id": "0", "ReceiptHandle": "h1", "VisibilityTimeout": 0}],
            },
        )
        for url, arn in (
            (DLQ, "arn:aws:sqs:us-east-1:123456789012:work-dlq"),
            (WORK, "arn:aws:sqs:us-east-1:123456789012:work"),
        ):
            stub.add_response(
                "get_queue_attributes",
                {"Attributes": {"QueueArn": arn}},
                {"QueueUrl": url, "AttributeNames": ["QueueArn"]},
            )
        stub.add_response(
            "start_message_move_task",
            {"TaskHandle": "task-1"},
            {
                "SourceArn": "arn:aws:sqs:us-east-1:123456789012:work-dlq",
                "DestinationArn": "arn:aws:sqs:us-east-1:123456789012:work",
            },
        )
        targets = ReplayTargets(
            results_bucket="r",
            work_queue_url=WORK,
            work_dlq_url=DLQ,
            failure_queue_url="f",
            use_move_task=True,
        )
        replayer = Replayer(s3=None, sqs=sqs, ledger=None, replays=None, targets=targets)  # type: ignore[arg-type]
        parked = replayer.replay_dlq(None)
        stub.assert_no_pending_responses()
    assert [(p.run, p.chunk) for p in parked] == [(RUN, 7)]
