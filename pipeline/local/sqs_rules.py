"""SQS's message rules that moto 5 does not enforce: the allowed characters, the size in bytes.

AWS refuses a message holding a character outside `#x9 | #xA | #xD | #x20-#xD7FF |
#xE000-#xFFFD | #x10000-#x10FFFF` (`InvalidMessageContents`), and caps a message at its
queue's `MaximumMessageSize` in UTF-8 bytes. moto takes any character and counts characters,
so a key holding U+FFFF, or a message of multi-byte keys near the cap, passed every local test
and would fail the Split pass on AWS at every retry. This module hooks moto's
`SQSBackend._validate_message` (SendMessage and every SendMessageBatch entry go through it) to
refuse what AWS refuses. A batch's bodies together are capped at 1 MiB too, also in bytes
(`BatchRequestTooLong`), where moto sums characters: `SQSBackend.send_message_batch` is hooked
for that.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from pipeline.local.patches import patch_once

_NOT_ALLOWED = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""A character SQS does not take in a message body (the W3C XML `Char` production)."""


def disallowed_character(body: str) -> str | None:
    """The first character of `body` SQS refuses, or None when it takes them all."""
    found = _NOT_ALLOWED.search(body)
    return None if found is None else found.group()


def install_sqs_message_rules() -> None:
    """Hook moto's SQS backend (idempotent)."""
    from moto.sqs.models import SQSBackend  # noqa: PLC0415  # moto imports slowly

    patch_once(SQSBackend, "_validate_message", _validated, rule=__name__)  # moto's one check
    patch_once(SQSBackend, "send_message_batch", _batch_capped, rule=__name__)


def _validated(original: Any) -> Any:
    from moto.sqs.exceptions import InvalidParameterValue, SQSException  # noqa: PLC0415

    @functools.wraps(original)
    def validate(self: Any, queue: Any, message_body: str, *args: Any, **kwargs: Any) -> None:
        char = disallowed_character(message_body)
        if char is not None:
            raise SQSException(
                "InvalidMessageContents",
                f"Invalid binary character '#x{ord(char):X}' was found in the message body, "
                "the set of allowed characters is #x9 | #xA | #xD | #x20 to #xD7FF | "
                "#xE000 to #xFFFD | #x10000 to #x10FFFF",
            )
        size = _utf8_bytes(message_body)
        if size > int(queue.maximum_message_size):
            raise InvalidParameterValue(
                "One or more parameters are invalid. Reason: Message must be shorter than "
                f"{queue.maximum_message_size} bytes."
            )
        original(self, queue, message_body, *args, **kwargs)

    return validate


def _batch_capped(original: Any) -> Any:
    from moto.sqs.exceptions import BatchRequestTooLong  # noqa: PLC0415
    from moto.sqs.models import MAXIMUM_MESSAGE_LENGTH  # noqa: PLC0415

    @functools.wraps(original)
    def send_batch(self: Any, queue_name: str, entries: dict[str, dict[str, Any]]) -> Any:
        size = sum(_utf8_bytes(entry.get("MessageBody", "")) for entry in entries.values())
        if size > MAXIMUM_MESSAGE_LENGTH:
            raise BatchRequestTooLong(size)
        return original(self, queue_name, entries)

    return send_batch


def _utf8_bytes(body: str) -> int:
    return len(body.encode("utf-8", "surrogatepass"))
