"""From an S3 "object created" notification to exactly one pipeline execution per manifest.

The execution is named by the run id (bucket, key, ETag or version), and its input is a pure
function of the object, so a duplicate notification — S3 delivers at least once, and a multipart
upload emits two — starts nothing new: Step Functions returns the running execution for the same
name and input, and answers `ExecutionAlreadyExists` once it has finished; both are success.

Knows nothing of Lambda or SQS: it takes the notification's JSON and a Step Functions client.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError

from pipeline.failures import SCHEMA_VERSION
from pipeline.ledger.runs import run_id

logger = logging.getLogger(__name__)

TEST_EVENT = "s3:TestEvent"


@dataclass(frozen=True, slots=True)
class ManifestObject:
    """One manifest object version, as the notification describes it."""

    bucket: str
    key: str
    etag: str
    version_id: str | None = None
    size: int | None = None

    @property
    def run(self) -> str:
        """The run id: the same object version is always the same run."""
        return run_id(self.bucket, self.key, self.version_id or self.etag)

    @property
    def uri(self) -> str:
        """`s3://bucket/key`, as the run summary names its manifest."""
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True, slots=True)
class StartedRun:
    """The outcome of `start_run`; a duplicate notification yields the existing execution."""

    run: str
    execution_arn: str


def iter_created_objects(notification: Mapping[str, Any]) -> Iterator[ManifestObject]:
    """The created objects of one S3 notification; the test event S3 sends on setup has none.

    Keys arrive URL-encoded with `+` for spaces (`quote_plus`), so they are decoded here, once.
    """
    if notification.get("Event") == TEST_EVENT:
        return
    for record in notification.get("Records", []):
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3 = record["s3"]
        obj = s3["object"]
        yield ManifestObject(
            bucket=s3["bucket"]["name"],
            key=unquote_plus(obj["key"]),
            etag=str(obj.get("eTag", "")).strip('"'),
            version_id=obj.get("versionId") or None,
            size=obj.get("size"),
        )


def execution_input(obj: ManifestObject) -> dict[str, Any]:
    """The state machine's input: a pure function of the object (idempotent StartExecution)."""
    return {
        "v": SCHEMA_VERSION,
        "run": obj.run,
        "paused": False,  # a new run splits at once (a continued one may pause first)
        "manifest": {
            "bucket": obj.bucket,
            "key": obj.key,
            "etag": obj.etag,
            "version_id": obj.version_id,
            "size": obj.size,
            "uri": obj.uri,
        },
    }


def start_run(sfn: Any, state_machine_arn: str, obj: ManifestObject) -> StartedRun:
    """Start the execution named by the run id; a duplicate start is success, not an error."""
    name = obj.run
    try:
        response = sfn.start_execution(
            stateMachineArn=state_machine_arn,
            name=name,
            input=json.dumps(execution_input(obj), sort_keys=True),
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
            raise
        arn = state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
        logger.info("run %s already started", name, extra={"run": name})
        return StartedRun(run=name, execution_arn=arn)
    return StartedRun(run=name, execution_arn=response["executionArn"])
