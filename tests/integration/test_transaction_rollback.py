"""A cancelled transaction on the local stack leaves every item as it was, and copies no table.

moto rolls a failed `TransactWriteItems` back by restoring a deep copy of each table it took
before the transaction began, so each transaction cost a copy of whole tables (quadratic over a
run's chunks). The emulator saves and restores the named items instead
(`pipeline/local/dynamodb_conflicts.py`). Held here across the wire: an update, a put over an
item, a new item and a delete, applied before a later condition fails, all undone; a
transaction that succeeds applied whole; and the items copied a transaction, not the table.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from moto.dynamodb.models.dynamo_type import Item

pytestmark = pytest.mark.integration


def _key(pk: str, sk: str = "a") -> dict:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _items(dynamodb, table: str) -> dict[tuple[str, str], dict]:
    rows = dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]
    return {(row["pk"]["S"], row["sk"]["S"]): row for row in rows}


@pytest.fixture
def filled(dynamodb, table) -> str:
    for n in range(40):
        dynamodb.put_item(TableName=table, Item={**_key(f"p{n}"), "n": {"N": str(n)}})
    return table


def test_a_transaction_cancelled_late_leaves_every_item_as_it_was(dynamodb, filled):
    before = _items(dynamodb, filled)
    # WHEN a transaction updates, overwrites, creates and deletes items, then fails a condition
    with pytest.raises(ClientError) as raised:
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": filled,
                        "Key": _key("p1"),
                        "UpdateExpression": "SET n = n + :one, extra = :x",
                        "ExpressionAttributeValues": {":one": {"N": "1"}, ":x": {"S": "x"}},
                    }
                },
                {"Put": {"TableName": filled, "Item": {**_key("p2"), "other": {"S": "y"}}}},
                {"Put": {"TableName": filled, "Item": {**_key("new"), "n": {"N": "7"}}}},
                {"Delete": {"TableName": filled, "Key": _key("p3")}},
                {
                    "ConditionCheck": {
                        "TableName": filled,
                        "Key": _key("p4"),
                        "ConditionExpression": "n = :wrong",
                        "ExpressionAttributeValues": {":wrong": {"N": "-1"}},
                    }
                },
            ]
        )
    # THEN it is cancelled, and every item is what it was
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert _items(dynamodb, filled) == before


def test_a_transaction_that_names_an_item_twice_changes_nothing(dynamodb, filled):
    before = _items(dynamodb, filled)
    with pytest.raises(ClientError):
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": filled, "Item": {**_key("p5"), "n": {"N": "50"}}}},
                {"Delete": {"TableName": filled, "Key": _key("p5")}},
            ]
        )
    assert _items(dynamodb, filled) == before


def test_a_transaction_that_succeeds_is_applied_whole(dynamodb, filled):
    dynamodb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": filled, "Item": {**_key("new"), "n": {"N": "7"}}}},
            {"Delete": {"TableName": filled, "Key": _key("p3")}},
            {
                "Update": {
                    "TableName": filled,
                    "Key": _key("p1"),
                    "UpdateExpression": "SET n = n + :one",
                    "ConditionExpression": "n = :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            },
        ]
    )
    items = _items(dynamodb, filled)
    assert items["new", "a"]["n"] == {"N": "7"}
    assert ("p3", "a") not in items
    assert items["p1", "a"]["n"] == {"N": "2"}
    assert len(items) == 40


def test_a_transaction_copies_the_items_it_names_not_the_table(dynamodb, filled, monkeypatch):
    copies = [0]
    original = Item.__deepcopy__

    def counted(self, memo):
        copies[0] += 1
        return original(self, memo)

    monkeypatch.setattr(Item, "__deepcopy__", counted)
    # WHEN a two-item transaction runs on a table of 40 items (moto copied all 40 first)
    dynamodb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": filled, "Item": {**_key("p6"), "n": {"N": "60"}}}},
            {"Put": {"TableName": filled, "Item": {**_key("p7"), "n": {"N": "70"}}}},
        ]
    )
    # THEN only those two items (and at most moto's own copy of each while it writes) were copied
    assert 0 < copies[0] <= 4
