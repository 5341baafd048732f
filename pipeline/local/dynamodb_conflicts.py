"""DynamoDB's transaction isolation on moto, with the conflicts real DynamoDB returns.

moto 5.2.5 checks a transaction's conditions and applies it without any lock, and rolls a failed
one back by restoring a copy of the whole table taken before it began: two concurrent requests
can both pass a condition, or erase each other's writes. Real DynamoDB isolates transactions per
item and, when two touch one item at once, cancels one with `TransactionConflict`
(`TransactionCanceledException` whose `CancellationReasons` say which item), and refuses a
single-item write to an item a transaction holds with `TransactionConflictException`. botocore
retries neither: the caller must (pipeline/ledger/table.py does).

So this module does both halves: while a transaction is in flight (from its arrival until it is
applied) it claims its items, and any other transaction or write that touches a claimed item is
refused with the conflict AWS would return; the application itself runs under one lock, because
moto's whole-table rollback is not safe otherwise (an implementation detail of the emulator that
no caller can observe: requests that touch different items never conflict).

That rollback also made every transaction cost a deep copy of each table it touches, taken
before it begins: the run ledger commits one transaction a chunk, so a local run of n chunks
copied ~n²/2 items (100,236 at 300 chunks). The copy is skipped while a transaction is applied
here; instead the items the transaction names (at most 100) are copied first, and put back as
they were when it fails, which is all moto's rollback restores under the lock.
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from pipeline.local.patches import patch_once

_SINGLE_WRITES = ("put_item", "update_item", "delete_item")
_claims: dict[tuple[str, str], int] = {}
_claims_lock = threading.Lock()
_apply_lock = threading.RLock()
_ids = itertools.count(1)
_applying = threading.local()
"""Set while this thread applies a transaction: moto applies its items through `put_item` and
`update_item`, which must not be refused for the claims of the transaction they belong to."""


class ConflictStats:
    """How many conflicts the local stack returned, by table (tests measure contention)."""

    transactions_cancelled: ClassVar[Counter[str]] = Counter()
    writes_refused: ClassVar[Counter[str]] = Counter()


def install_transaction_conflicts() -> None:
    """Hook moto's DynamoDB backend (idempotent)."""
    from moto.dynamodb import models  # noqa: PLC0415  # moto imports slowly
    from moto.dynamodb.models import DynamoDBBackend  # noqa: PLC0415

    _wrap(DynamoDBBackend, "transact_write_items", _transaction)
    for name in _SINGLE_WRITES:
        _wrap(DynamoDBBackend, name, _single_write)
    _wrap(DynamoDBBackend, "batch_write_item", _serialized)
    # the `copy` module moto's backend calls
    patch_once(models, "copy", lambda _: _NoTableCopies(models.Table), rule=__name__)


class _NoTableCopies:
    """The `copy` module, but a table is its own deep copy while this thread applies a transaction.

    moto's `transact_write_items` deep-copies each table it touches (its rollback); `_transaction`
    saves and restores the items themselves instead. Every other deep copy is the real one.
    """

    def __init__(self, table_type: type) -> None:
        self._table_type = table_type

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    def deepcopy(self, value: Any, memo: dict[int, Any] | None = None) -> Any:
        if getattr(_applying, "active", False) and isinstance(value, self._table_type):
            return value
        return copy.deepcopy(value, memo)


def _wrap(cls: type, name: str, how: Callable[..., Any]) -> None:
    def make(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def wrapped(backend: Any, *args: Any, **kwargs: Any) -> Any:
            return how(method, backend, *args, **kwargs)

        return wrapped

    patch_once(cls, name, make, rule=__name__)


def _serialized(method: Callable[..., Any], backend: Any, *args: Any, **kwargs: Any) -> Any:
    with _apply_lock:
        return method(backend, *args, **kwargs)


def _transaction(method: Callable[..., Any], backend: Any, *args: Any, **kwargs: Any) -> Any:
    from moto.dynamodb.exceptions import TransactionCanceledException  # noqa: PLC0415

    items = kwargs.get("transact_items", args[0] if args else [])
    keys = [_transact_key(backend, item) for item in items]
    owner = next(_ids)
    with _claims_lock:
        busy = {key for key in keys if key is not None and key in _claims}
        if busy:
            ConflictStats.transactions_cancelled.update({table for table, _ in busy})
            reasons = [
                ("TransactionConflict", "Transaction is ongoing for the item", None)
                if key in busy
                else (None, None, None)
                for key in keys
            ]
            raise TransactionCanceledException(reasons)
        for key in keys:
            if key is not None:
                _claims[key] = owner
    try:
        with _apply_lock:
            saved = _saved_items(backend, items)
            _applying.active = True
            try:
                return method(backend, *args, **kwargs)
            except Exception:
                _restore(saved)
                raise
            finally:
                _applying.active = False
    finally:
        with _claims_lock:
            _release(keys, owner)


def _saved_items(backend: Any, items: list[dict[str, Any]]) -> list[tuple[Any, Any, Any, Any]]:
    """(table, hash, range, a copy of the item or None) for each item the transaction names.

    Taken before the first operation, so a name listed twice (moto then refuses the whole
    transaction) keeps the state from before any of them.
    """
    saved = []
    for item in items:
        _, table_name, attrs = _named(item)
        try:
            table = backend.get_table(table_name)
            hash_value, range_value = backend.get_keys_value(table, attrs)
        except Exception:  # moto refuses the request itself, before any write
            continue
        current = table.get_item(hash_value, range_value)
        saved.append((table, hash_value, range_value, copy.deepcopy(current)))
    return saved


def _restore(saved: list[tuple[Any, Any, Any, Any]]) -> None:
    """Put every saved item back as it was (first saved last: the state before all of them)."""
    for table, hash_value, range_value, item in reversed(saved):
        table.delete_item(hash_value, range_value)
        if item is None:
            continue
        if range_value:  # as moto's `Table.put_item` files an item
            table.items[hash_value][range_value] = item
        else:
            table.items[hash_value] = item


def _single_write(method: Callable[..., Any], backend: Any, *args: Any, **kwargs: Any) -> Any:
    from moto.dynamodb.exceptions import DynamodbException  # noqa: PLC0415

    if getattr(_applying, "active", False):
        return method(backend, *args, **kwargs)
    table_name = kwargs.get("table_name", args[0] if args else "")
    if method.__name__ == "put_item":
        attrs = kwargs.get("item_attrs", args[1] if len(args) > 1 else {})
        key = _key_of(backend, table_name, attrs)
    else:
        key = _key_id(table_name, kwargs.get("key", args[1] if len(args) > 1 else {}))
    with _claims_lock:
        if key in _claims:
            ConflictStats.writes_refused[table_name] += 1
            raise DynamodbException(
                "com.amazonaws.dynamodb.v20120810#TransactionConflictException",
                "Transaction is ongoing for the item",
            )
    with _apply_lock:
        return method(backend, *args, **kwargs)


def _release(keys: Iterable[tuple[str, str] | None], owner: int) -> None:
    for key in keys:
        if key is not None and _claims.get(key) == owner:
            del _claims[key]


def _named(item: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """A transaction item's operation, table, and the attributes that hold its item's key.

    A Put's whole item; any other operation's `Key`.
    """
    (kind, op), *_ = item.items()
    attrs = op.get("Item", {}) if kind == "Put" else op.get("Key", {})
    return kind, op.get("TableName", ""), attrs


def _transact_key(backend: Any, item: dict[str, Any]) -> tuple[str, str] | None:
    kind, table_name, attrs = _named(item)
    return _key_of(backend, table_name, attrs) if kind == "Put" else _key_id(table_name, attrs)


def _key_of(backend: Any, table_name: str, attrs: dict[str, Any]) -> tuple[str, str] | None:
    try:
        table = backend.get_table(table_name)
    except Exception:  # moto raises its own error for the request itself
        return None
    names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
    return _key_id(table_name, {name: attrs.get(name) for name in names})


def _key_id(table_name: str, key: dict[str, Any]) -> tuple[str, str]:
    return table_name, json.dumps(key, sort_keys=True, default=str)
