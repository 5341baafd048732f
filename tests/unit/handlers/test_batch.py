"""The SQS batch processor: a record that raises is retried, and the log says why."""

from __future__ import annotations

import io
import json
import logging
import uuid

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import process_partial_response

from handlers._batch import sqs_batch_processor
from pipeline.local.poller import to_lambda_record


def _record(message_id: str, body: str) -> dict:
    """An SQS event record as Lambda (and the local poller) hands it over."""
    message = {"MessageId": message_id, "ReceiptHandle": f"handle-{message_id}", "Body": body}
    return to_lambda_record(message, "arn:aws:sqs:us-east-1:123456789012:work")


def _logger_to(out: io.StringIO) -> Logger:
    """A Powertools logger of its own writing to `out`.

    Powertools configures a service's logger once: a second `Logger` of the same service keeps
    the first one's handler, so two tests sharing a name would read each other's buffer.
    """
    return Logger(
        service=f"test-batch-{uuid.uuid4().hex}", logger_handler=logging.StreamHandler(out)
    )


def _crash_on_bad(record) -> str:
    if record.body == "bad":
        raise RuntimeError("the ledger refused chunk 7")
    return record.body


def test_a_record_that_raises_is_reported_and_logged_with_its_traceback():
    # GIVEN a processor logging to a buffer, and a batch whose second record raises
    out = io.StringIO()
    processor = sqs_batch_processor(_logger_to(out))
    event = {"Records": [_record("m-1", "ok"), _record("m-2", "bad"), _record("m-3", "ok")]}
    # WHEN the batch is processed
    response = process_partial_response(
        event=event, record_handler=_crash_on_bad, processor=processor
    )
    # THEN only that record goes back to the queue
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-2"}]}
    # AND one WARNING line says why, with the exception and where it was raised
    (line,) = [json.loads(text) for text in out.getvalue().splitlines()]
    assert line["level"] == "WARNING"
    assert "the ledger refused chunk 7" in line["exception"]
    assert "_crash_on_bad" in line["exception"]
    assert line["exception_name"] == "RuntimeError"


def test_a_clean_batch_logs_nothing():
    out = io.StringIO()
    event = {"Records": [_record("m-1", "ok")]}
    response = process_partial_response(
        event=event, record_handler=_crash_on_bad, processor=sqs_batch_processor(_logger_to(out))
    )
    assert response == {"batchItemFailures": []}
    assert out.getvalue() == ""
