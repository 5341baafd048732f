"""A transaction botocore sends again is applied once, as DynamoDB matches its ClientRequestToken.

botocore gives every TransactWriteItems call a token and keeps it across its own retries; the
emulator now honours it as AWS does (pipeline/local/dynamodb_idempotency.py). The first test
loses a real answer: a `needs-retry` handler makes botocore send the very same request again
after the first one succeeded, as it would after a reset connection.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from pipeline.ledger.table import RunLedger
from tests.lost_answers import lose_first_answer

pytestmark = pytest.mark.integration

RUN = "1d3e" * 5


def _add(table: str, key: str, amount: int) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": table,
            "Key": {"pk": {"S": key}, "sk": {"S": "COUNTS"}},
            "UpdateExpression": "ADD n :n",
            "ExpressionAttributeValues": {":n": {"N": str(amount)}},
        }
    }


def _count(dynamodb, table: str, key: str) -> int:
    item = dynamodb.get_item(
        TableName=table, Key={"pk": {"S": key}, "sk": {"S": "COUNTS"}}, ConsistentRead=True
    )["Item"]
    return int(item["n"]["N"])


def test_a_count_whose_answer_is_lost_is_applied_once_when_botocore_sends_it_again(dynamodb, table):
    # GIVEN a ledger whose first TransactWriteItems answer is "lost": botocore is told to retry
    # a call that succeeded, so the same request (and token) reaches the server twice
    ledger = RunLedger(dynamodb, table)
    ledger.start_run(RUN, manifest="s3://in/m.csv")
    sent = lose_first_answer(dynamodb, "TransactWriteItems")
    # WHEN a chunk is counted
    counted = ledger.record_chunk(
        RUN,
        0,
        ok=3,
        failed=0,
        failed_by_stage={},
        failed_by_error={},
        seconds=1.0,
        images=3,
    )
    # THEN the retry was answered as the first call was: counted once, by this call
    assert sent == [1, 2]
    assert counted
    state = ledger.get_run(RUN)
    assert (state.ok, state.chunks_done) == (3, 1)


def test_the_same_token_with_other_parameters_is_refused(dynamodb, table):
    # GIVEN a transaction applied with a token
    dynamodb.transact_write_items(TransactItems=[_add(table, "a", 1)], ClientRequestToken="t-1")
    # WHEN the same token comes back with the same request, then with another
    dynamodb.transact_write_items(TransactItems=[_add(table, "a", 1)], ClientRequestToken="t-1")
    with pytest.raises(ClientError) as refused:
        dynamodb.transact_write_items(TransactItems=[_add(table, "a", 2)], ClientRequestToken="t-1")
    # THEN the repeat applied nothing, and the changed request was refused
    assert refused.value.response["Error"]["Code"] == "IdempotentParameterMismatchException"
    assert _count(dynamodb, table, "a") == 1
    # AND another token is another transaction
    dynamodb.transact_write_items(TransactItems=[_add(table, "a", 1)], ClientRequestToken="t-2")
    assert _count(dynamodb, table, "a") == 2


def test_a_cancelled_transaction_leaves_no_token_and_its_retry_runs_again(dynamodb, table):
    # GIVEN a transaction cancelled by its condition (the item it must not find exists)
    key = {"pk": {"S": "b"}, "sk": {"S": "MARK"}}
    dynamodb.put_item(TableName=table, Item=key)
    put = {
        "Put": {
            "TableName": table,
            "Item": key,
            "ConditionExpression": "attribute_not_exists(sk)",
        }
    }
    with pytest.raises(ClientError, match="TransactionCanceled"):
        dynamodb.transact_write_items(TransactItems=[put], ClientRequestToken="t-3")
    # WHEN the world changes and the same request is sent again
    dynamodb.delete_item(TableName=table, Key=key)
    dynamodb.transact_write_items(TransactItems=[put], ClientRequestToken="t-3")
    # THEN it ran: it had no effect the first time, so nothing was remembered
    assert "Item" in dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True)
