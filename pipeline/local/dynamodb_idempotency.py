"""DynamoDB's idempotent transactions (`ClientRequestToken`), which moto 5.2.5 ignores.

botocore puts a fresh `ClientRequestToken` on every TransactWriteItems call and keeps it across
its own retries. So on AWS, when a transaction is applied but its answer is lost (a reset
connection, a read timeout) and botocore sends it again, the retry succeeds without applying it a
second time, for 10 minutes after the first call completed. The same token with other parameters
is refused (`IdempotentParameterMismatchException`), and so is the same token while its first
call is still running (`TransactionInProgressException`). moto applies every call anew: such a
retry met its own transaction's conditions and was cancelled as though another writer had won,
a case only the emulator could produce (the ledger's count of a chunk, say, refused by its own
marker).

Here the handler remembers the token of each transaction that succeeded, with a digest of its
parameters, for AWS's 10 minutes. A call that was cancelled or failed leaves no token: it had no
effect, and a retry of it runs again.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
import time
from collections import OrderedDict
from typing import Any

from pipeline.local.patches import patch_once

IDEMPOTENCY_WINDOW_S = 600.0
"""How long DynamoDB matches a token to the transaction that completed with it."""
_ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#"


class _Tokens:
    """Tokens of completed transactions (oldest first) and of those still running."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self.running: set[str] = set()

    def forget_expired(self, now: float) -> None:
        while self.done and now - next(iter(self.done.values()))[1] > IDEMPOTENCY_WINDOW_S:
            self.done.popitem(last=False)


TOKENS = _Tokens()


def install_idempotent_transactions() -> None:
    """Hook moto's DynamoDB handler so a repeat of a transaction by its token is harmless."""
    from moto.dynamodb.responses import DynamoHandler  # noqa: PLC0415  # moto imports slowly

    patch_once(DynamoHandler, "transact_write_items", _idempotent, rule=__name__)


def _idempotent(original: Any) -> Any:
    from moto.core.responses import ActionResult  # noqa: PLC0415  # moto imports slowly
    from moto.dynamodb.exceptions import DynamodbException  # noqa: PLC0415

    @functools.wraps(original)
    def transact(handler: Any) -> Any:
        token = handler.body.get("ClientRequestToken")
        if not token:
            return original(handler)
        digest = _digest(handler.body)
        with TOKENS.lock:
            TOKENS.forget_expired(time.monotonic())
            seen = TOKENS.done.get(token)
            if seen is None and token in TOKENS.running:
                raise DynamodbException(
                    f"{_ERROR_PREFIX}TransactionInProgressException",
                    "The transaction with the given request token is already in progress.",
                )
            if seen is not None and seen[0] != digest:
                raise DynamodbException(
                    f"{_ERROR_PREFIX}IdempotentParameterMismatchException",
                    "The request uses the same client token as a previous, but non-identical "
                    "request.",
                )
            if seen is None:
                TOKENS.running.add(token)
        if seen is not None:  # applied before: answer success, apply nothing
            return ActionResult({"ConsumedCapacity": [], "ItemCollectionMetrics": {}})
        try:
            result = original(handler)
        finally:
            with TOKENS.lock:
                TOKENS.running.discard(token)
        with TOKENS.lock:
            TOKENS.done[token] = (digest, time.monotonic())
        return result

    return transact


def _digest(body: dict[str, Any]) -> str:
    """The request's parameters, its token left out (what a retry must repeat exactly)."""
    params = {name: value for name, value in body.items() if name != "ClientRequestToken"}
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()
