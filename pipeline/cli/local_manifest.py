"""Which local paths can be a manifest: regular files only, said the same by `scan` and `run`.

A manifest is read as Split reads an S3 object: its size first, then ranged reads
(`pipeline.gzip.ranged.LocalFileReader`). A pipe, a terminal or a device has no size (stat
says 0) and no ranges, so it would scan as an empty manifest, a silent wrong answer; a
directory cannot be opened as one at all. Such paths are refused by name before any read. A
path that does not exist is left to each command's own "no such file" answer.
"""

from __future__ import annotations

import stat
from pathlib import Path

from pipeline.s3_uri import S3_SCHEME

_KINDS = (
    (stat.S_ISFIFO, "a pipe"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def not_a_manifest_file(source: str) -> str | None:
    """Why the local path `source` cannot be a manifest, in one line; None if it may be one.

    None too for `s3://` URIs, and for a path that cannot be looked at (missing, or not
    permitted): opening it says that, as before.
    """
    if source.startswith(S3_SCHEME):
        return None
    try:
        mode = Path(source).stat().st_mode
    except OSError:
        return None
    if stat.S_ISDIR(mode):
        return f"{source} is a directory, not a manifest"
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    return f"{source} is {kind}: a manifest must be a regular file or an s3:// object"
