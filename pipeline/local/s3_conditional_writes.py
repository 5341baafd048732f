"""S3's conditional writes made atomic, as on AWS; moto 5.2.5 checks, then writes.

On AWS a PUT with `If-None-Match: *` or `If-Match: <etag>` is decided when it completes: of two
conditional writes of one key, the first to finish wins and the other gets 412 Precondition
Failed. moto's PUT handler reads the key for its check and stores the new object only later, in
the same request but with nothing held in between, so two PUTs whose checks both ran before either
stored an object both succeed. Publishing a part (`If-None-Match`) and pruning a failure part
(`If-Match` on the ETag it read) rely on the loser being told; locally it was not.

Here every PUT of an object runs its check and its write as one step per key (striped locks:
unrelated keys rarely wait, and a PUT holds its stripe only for moto's check and store).
"""

from __future__ import annotations

import functools
import threading
import zlib
from typing import Any

from pipeline.local.patches import patch_once

STRIPES = 64
_stripes = tuple(threading.Lock() for _ in range(STRIPES))


def install_atomic_conditional_writes() -> None:
    """Hook moto's S3 PUT handler so a conditional write is checked and applied at once."""
    from moto.s3.responses import S3Response  # noqa: PLC0415  # moto imports slowly

    patch_once(S3Response, "put_object", _atomic, rule=__name__)


def _atomic(put_object: Any) -> Any:
    @functools.wraps(put_object)
    def atomic_put_object(response: Any) -> Any:
        with _stripe(response.bucket_name, response.parse_key_name()):
            return put_object(response)

    return atomic_put_object


def _stripe(bucket: str, key: str) -> threading.Lock:
    """The lock every PUT of `bucket`/`key` takes (a stable hash: the same key, the same lock)."""
    return _stripes[zlib.crc32(f"{bucket}/{key}".encode()) % STRIPES]
