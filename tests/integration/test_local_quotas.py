"""The local stack meets AWS's hard quotas where AWS would (README, "How the local stack…").

Step Functions' 25,000 history events (lowered here) and 256 KiB state payloads fail the
execution; SQS refuses a message over the queue's 1 MiB (in UTF-8 bytes) or holding a character
outside its allowed set (`InvalidMessageContents`), and holds a queue to its in-flight quota
(`OverLimit`); DynamoDB refuses an item over 400 KB and an
expression over 4 KB;
a Step Functions task that runs past its function's Timeout fails as `Sandbox.Timedout`.
"""

from __future__ import annotations

import json
import time
import uuid

import boto3
import orjson
import pytest
from botocore.exceptions import ClientError

from pipeline.config import SQS_MAX_MESSAGE_BYTES
from pipeline.local import quotas, sqs_in_flight
from pipeline.local.dynamodb_expressions import MAX_EXPRESSION_BYTES
from pipeline.local.functions import REGISTRY, TIMEOUT_ERROR
from pipeline.manifest.parse import ManifestRecord
from pipeline.split.chunking import Chunk
from pipeline.split.sinks import ChunkMessage, SqsChunkSink
from tests.local_functions import fake_function
from tests.wait import execution_ended

pytestmark = pytest.mark.integration

ROLE = "arn:aws:iam::123456789012:role/quota-test"
DYNAMODB_MAX_ITEM_BYTES = 400 * 1024


@pytest.fixture
def sfn(emulator):
    return boto3.client("stepfunctions", endpoint_url=emulator.endpoint_url)


@pytest.fixture
def lowered_history_quota(monkeypatch) -> int:
    monkeypatch.setattr(quotas.LIMITS, "max_history_events", 40)
    return 40


def _execute(sfn, definition: dict, payload: dict | None = None) -> tuple[dict, list[dict]]:
    name = f"quota-{uuid.uuid4().hex[:8]}"
    machine = sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)
    arn = sfn.start_execution(
        stateMachineArn=machine["stateMachineArn"], name=name, input=json.dumps(payload or {})
    )["executionArn"]

    execution = execution_ended(sfn, arn, 60, interval_s=0.2)
    return execution, sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]


def test_a_polling_loop_fails_at_the_history_quota_and_no_catch_sees_it(sfn, lowered_history_quota):
    # GIVEN a loop that would wait forever, every state caught
    loop = {
        "StartAt": "Wait",
        "States": {
            "Wait": {"Type": "Wait", "Seconds": 0, "Next": "Check"},
            "Check": {"Type": "Pass", "Next": "Again"},
            "Again": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.done", "IsPresent": True, "Next": "End"}],
                "Default": "Wait",
            },
            "End": {"Type": "Succeed"},
        },
    }
    # WHEN it runs
    execution, events = _execute(sfn, loop)
    # THEN it fails as AWS fails it, at the quota
    assert execution["status"] == "FAILED"
    assert execution["error"] == quotas.HISTORY_QUOTA_ERROR
    assert "maximum number of history events" in execution["cause"]
    assert lowered_history_quota <= len(events) <= lowered_history_quota + 5


def test_a_state_output_over_256_kib_fails_the_execution(sfn):
    big = {
        "StartAt": "Grow",
        "States": {
            "Grow": {
                "Type": "Pass",
                "Parameters": {"blob.$": "$.blob", "again.$": "$.blob"},
                "End": True,
            }
        },
    }
    blob = "x" * (quotas.MAX_STATE_PAYLOAD_BYTES // 2 + 10)  # input fits, output does not
    execution, _ = _execute(sfn, big, {"blob": blob})
    assert (execution["status"], execution["error"]) == ("FAILED", quotas.PAYLOAD_QUOTA_ERROR)


def _queue(sqs) -> str:
    return sqs.create_queue(
        QueueName=f"q-{uuid.uuid4().hex[:8]}",
        Attributes={"MaximumMessageSize": str(SQS_MAX_MESSAGE_BYTES)},
    )["QueueUrl"]


def test_sqs_refuses_a_message_over_the_queue_maximum(sqs):
    url = _queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="x" * SQS_MAX_MESSAGE_BYTES)
    with pytest.raises(ClientError):
        sqs.send_message(QueueUrl=url, MessageBody="x" * (SQS_MAX_MESSAGE_BYTES + 1))


def test_sqs_counts_a_message_s_size_in_utf8_bytes(sqs):
    # GIVEN a body of 2-byte characters: under the cap in characters, over it in bytes
    url = _queue(sqs)
    body = "é" * (SQS_MAX_MESSAGE_BYTES // 2 + 1)
    # WHEN sent alone or in a batch / THEN refused, as AWS counts bytes (moto counts characters)
    with pytest.raises(ClientError, match="shorter than"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    with pytest.raises(ClientError, match=r"shorter than|cannot be longer than"):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": body}])
    sqs.send_message(QueueUrl=url, MessageBody="é" * (SQS_MAX_MESSAGE_BYTES // 2))


def test_sqs_caps_a_batch_s_bodies_together_at_1_mib_in_utf8_bytes(sqs):
    # GIVEN four bodies of 2-byte characters, each well under the cap, together 1 MiB + 4 bytes
    # (moto sums characters: half a MiB)
    url = _queue(sqs)
    quarter = "é" * (SQS_MAX_MESSAGE_BYTES // 8 + 1)
    entries = [{"Id": str(i), "MessageBody": quarter} for i in range(4)]
    # WHEN sent in one batch / THEN refused as a whole, as AWS does: nothing is queued
    with pytest.raises(ClientError) as refused:
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
    assert refused.value.response["Error"]["Code"].endswith("BatchRequestTooLong")
    assert "Messages" not in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    # AND a batch of exactly 1 MiB is taken whole
    exact = "é" * (SQS_MAX_MESSAGE_BYTES // 8)
    sent = sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": exact} for i in range(4)]
    )
    assert (len(sent["Successful"]), sent.get("Failed", [])) == (4, [])


@pytest.mark.parametrize("char", ["\uffff", "\ufffe", "\x01", "\x1f"])
def test_sqs_refuses_a_character_outside_its_allowed_set(sqs, char):
    url = _queue(sqs)
    # WHEN a body holds a character XML does not allow / THEN InvalidMessageContents
    for send in (
        lambda: sqs.send_message(QueueUrl=url, MessageBody=f"key{char}"),
        lambda: sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": "a", "MessageBody": f"key{char}"}]
        ),
    ):
        with pytest.raises(ClientError) as raised:
            send()
        assert raised.value.response["Error"]["Code"] == "InvalidMessageContents"
    # AND the characters around them it takes
    sqs.send_message(QueueUrl=url, MessageBody="\t\n\r \ud7ff\ue000\ufffd\U0010ffff é 中")


def test_a_chunk_naming_a_key_with_a_noncharacter_reaches_the_worker_intact(sqs):
    # GIVEN a chunk whose key holds U+FFFE and U+FFFF (valid UTF-8, so S3 takes such a key)
    url = _queue(sqs)
    chunk = Chunk("run", 0, (ManifestRecord(1, "bkt", "a\ufffeb\uffff.jpg"),))
    # WHEN Split's sink sends it (raw, SQS would refuse it)
    sink = SqsChunkSink(sqs, url)
    sink.send(ChunkMessage(0, orjson.dumps(chunk.to_message()), 1, 1))
    sink.flush()
    # THEN the worker reads the same key back
    (message,) = sqs.receive_message(QueueUrl=url)["Messages"]
    assert Chunk.from_message(json.loads(message["Body"])) == chunk


@pytest.fixture
def lowered_in_flight_quota(monkeypatch) -> int:
    monkeypatch.setattr(sqs_in_flight.LIMITS, "standard", 5)
    return 5


def test_sqs_holds_a_queue_to_its_in_flight_quota_as_aws_answers(sqs, lowered_in_flight_quota):
    # GIVEN a standard queue of 8 messages, with the in-flight quota lowered to 5
    url = sqs.create_queue(QueueName=f"inflight-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    for i in range(8):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")

    def receive(wait_s: int = 0) -> list[dict]:
        return sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60, WaitTimeSeconds=wait_s
        ).get("Messages", [])

    # WHEN one receive takes what it may THEN it gets only the room under the quota
    held = receive()
    assert len(held) == lowered_in_flight_quota
    # AND past it a short poll is refused with OverLimit ...
    with pytest.raises(ClientError) as refused:
        receive()
    assert refused.value.response["Error"]["Code"] == "OverLimit"
    # ... and a long poll gets nothing and no error, after its wait, as if the queue were empty
    started = time.monotonic()
    assert receive(wait_s=1) == []
    assert time.monotonic() - started >= 1
    # AND a deleted message makes room for one more
    sqs.delete_message(QueueUrl=url, ReceiptHandle=held[0]["ReceiptHandle"])
    assert len(receive()) == 1


def test_dynamodb_refuses_an_item_over_400_kb(dynamodb, table):
    key = {"pk": {"S": "RUN#big"}, "sk": {"S": "META"}}
    dynamodb.put_item(TableName=table, Item={**key, "v": {"S": "x" * 300_000}})
    with pytest.raises(ClientError) as refused:
        dynamodb.put_item(
            TableName=table, Item={**key, "v": {"S": "x" * (DYNAMODB_MAX_ITEM_BYTES + 1)}}
        )
    assert refused.value.response["Error"]["Code"] == "ValidationException"


def _projection_of(size: int) -> str:
    """A projection of distinct attribute names exactly `size` bytes long."""
    names = [f"a{i:04d}" for i in range(size // 6)]  # 6 bytes a name with its comma
    expression = ",".join(names)
    return expression + "x" * (size - len(expression))


def test_dynamodb_refuses_an_expression_over_4_kb(dynamodb, table):
    key = {"pk": {"S": "RUN#expr"}, "sk": {"S": "META"}}
    dynamodb.put_item(TableName=table, Item={**key, "a0000": {"N": "1"}})
    at_limit = _projection_of(MAX_EXPRESSION_BYTES)
    found = dynamodb.get_item(TableName=table, Key=key, ProjectionExpression=at_limit)
    assert found["Item"] == {"a0000": {"N": "1"}}
    with pytest.raises(ClientError) as refused:
        dynamodb.get_item(TableName=table, Key=key, ProjectionExpression=at_limit + "y")
    error = refused.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert "Expression size has exceeded the maximum allowed size" in error["Message"]


def test_a_transaction_with_an_expression_over_4_kb_is_refused_whole(dynamodb, table):
    # GIVEN a transaction whose second action's update has a clause per counter, past 4 KB
    marker = {"pk": {"S": "RUN#tx"}, "sk": {"S": "CHUNK#0"}}
    counter = {"pk": {"S": "RUN#tx"}, "sk": {"S": "SHARD#0"}}
    clauses = [f"#e{i} :one" for i in range(500)]
    update = {
        "TableName": table,
        "Key": counter,
        "UpdateExpression": "ADD " + ", ".join(clauses),
        "ExpressionAttributeNames": {f"#e{i}": f"error_{i}" for i in range(500)},
        "ExpressionAttributeValues": {":one": {"N": "1"}},
    }
    assert len(update["UpdateExpression"]) > MAX_EXPRESSION_BYTES
    # WHEN it is sent THEN DynamoDB refuses it, and nothing of it is applied
    with pytest.raises(ClientError) as refused:
        dynamodb.transact_write_items(
            TransactItems=[{"Put": {"TableName": table, "Item": marker}}, {"Update": update}]
        )
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "Item" not in dynamodb.get_item(TableName=table, Key=marker)


def sleepy(event: float, context: object) -> str:
    """A Lambda handler that takes `event` seconds."""
    time.sleep(event)
    return "woke"


def test_a_function_past_its_timeout_fails_as_lambda_does():
    slow = fake_function(
        "tests.integration.test_local_quotas.sleepy", name="slow", logical_id="Slow", timeout_s=1
    )
    payload, error = REGISTRY.invoke(slow, b"3")
    assert error == "Unhandled"
    assert json.loads(payload)["errorType"] == TIMEOUT_ERROR
    assert REGISTRY.invoke(slow, b"0.1") == (b'"woke"', None)
