"""Kill Split mid-pass, without touching production code: a botocore hook on its SQS client.

Split runs in this process (the local stack dispatches Step Functions' Lambda tasks in-process),
so a `before-parameter-build` hook on the Split handler's SQS client sees every chunk batch it
sends. For a run whose first chunks name a key containing `marker`, the run's second
SendMessageBatch raises, once: the first batch of chunks is on the WorkQueue, the rest is not,
and the Lambda invocation ends with an error — what Step Functions sees of a Split killed
mid-pass. The state machine's Retry runs Split again.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pipeline.split.chunking import Chunk

EVENT = "before-parameter-build.sqs.SendMessageBatch"


class SplitKilledError(RuntimeError):
    """The injected death of a Split pass."""


@dataclass
class SplitKills:
    marker: str
    calls: Counter[str] = field(default_factory=Counter)
    targets: set[str] = field(default_factory=set)
    killed: set[str] = field(default_factory=set)

    def hook(self, params: dict[str, Any], **_: Any) -> None:
        bodies = [json.loads(entry["MessageBody"]) for entry in params.get("Entries", [])]
        if not bodies:
            return
        run = bodies[0]["run"]
        keys = [record.key for b in bodies for record in Chunk.from_message(b).items]
        if any(self.marker in key for key in keys):
            self.targets.add(run)
        if run not in self.targets:
            return
        self.calls[run] += 1
        if self.calls[run] == 2 and run not in self.killed:
            self.killed.add(run)
            raise SplitKilledError(f"split of {run} killed after its first chunk batch")


def _is_sqs_client(value: Any) -> bool:
    meta = getattr(value, "meta", None)
    return getattr(getattr(meta, "service_model", None), "service_name", None) == "sqs"


def _split_sqs_clients() -> list[Any]:
    """The SQS clients the Split handler holds: module globals, or attributes of one."""
    module = importlib.import_module("handlers.split")
    found = []
    for value in vars(module).values():
        if _is_sqs_client(value):
            found.append(value)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = (getattr(value, f.name) for f in dataclasses.fields(value))
            found.extend(field_value for field_value in fields if _is_sqs_client(field_value))
    assert found, "handlers.split holds no SQS client to hook"
    return found


@contextmanager
def kill_split_once(marker: str) -> Iterator[SplitKills]:
    kills = SplitKills(marker)
    clients = _split_sqs_clients()
    for client in clients:
        client.meta.events.register(EVENT, kills.hook)
    try:
        yield kills
    finally:
        for client in clients:
            client.meta.events.unregister(EVENT, kills.hook)
