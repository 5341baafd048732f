"""DynamoDB's 4 KB limit on each expression string, which moto 5.2.5 does not enforce.

AWS refuses a request whose update, condition, key condition, filter or projection expression is
over 4,096 bytes (`ValidationException`, "Expression size has exceeded the maximum allowed
size"), in a transaction's actions too. The ledger builds some expressions from the data: a
chunk's count ADDs one clause per failure stage and per error code it saw. Locally such a request
went through however long it grew; on AWS the count would fail on every delivery, and the chunk
would end in the WorkDLQ.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any

from pipeline.local.patches import patch_once

MAX_EXPRESSION_BYTES = 4096
EXPRESSIONS = (
    "UpdateExpression",
    "ConditionExpression",
    "KeyConditionExpression",
    "FilterExpression",
    "ProjectionExpression",
)
_GUARDED = (
    "put_item",
    "get_item",
    "delete_item",
    "update_item",
    "query",
    "scan",
    "batch_get_item",
    "transact_write_items",
    "transact_get_items",
)
"""The handler methods whose requests carry expressions (their own, or their actions')."""


def install_expression_limits() -> None:
    """Hook moto's DynamoDB handler: a request with an expression over 4 KB is refused."""
    from moto.dynamodb.responses import DynamoHandler  # noqa: PLC0415  # moto imports slowly

    for name in _GUARDED:
        patch_once(DynamoHandler, name, _guarded, rule=__name__)


def oversized(body: Mapping[str, Any]) -> tuple[str, int] | None:
    """The first expression of a request body over the limit, with its size in bytes."""
    for request in _requests(body):
        for name in EXPRESSIONS:
            expression = request.get(name)
            if isinstance(expression, str):
                size = len(expression.encode("utf-8"))
                if size > MAX_EXPRESSION_BYTES:
                    return name, size
    return None


def _requests(body: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The body itself, each action of a transaction, and each table of a BatchGetItem."""
    yield body
    for item in body.get("TransactItems") or ():
        yield from (action for action in item.values() if isinstance(action, Mapping))
    for table in (body.get("RequestItems") or {}).values():
        if isinstance(table, Mapping):
            yield table


def _guarded(method: Any) -> Any:
    from moto.dynamodb.exceptions import MockValidationException  # noqa: PLC0415

    @functools.wraps(method)
    def guarded(handler: Any) -> Any:
        found = oversized(handler.body)
        if found is not None:
            expression, size = found
            raise MockValidationException(
                f"Invalid {expression}: Expression size has exceeded the maximum allowed size; "
                f"expression size: {size}"
            )
        return method(handler)

    return guarded
