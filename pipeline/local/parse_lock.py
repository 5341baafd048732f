"""One thread at a time in `ast.parse` on the interpreters whose AST builder is not thread-safe.

CPython 3.11.0 to 3.11.7 and 3.12.0 to 3.12.1 count the depth of the tree `ast.parse` builds in the
interpreter's `ast` module state, shared by every thread (python/cpython#106905, fixed in 3.11.8
and 3.12.2). A garbage collection inside that build may run finalizers and pass the GIL; when
another thread parses meanwhile, it resets the shared counter and the first parse fails with
`SystemError: AST constructor recursion depth mismatch`.

The embedded stack parses from several threads. werkzeug compiles every URL rule with
`ast.parse`, and moto builds a REST service's rules on that service's first request, on whichever
server thread serves it; a second service's first request, or an import that pytest rewrites, can
parse at the same moment. On 3.11.7 this failed a Step Functions task's Lambda invoke with a 500
that no retry of ours would have met on AWS. A lock around `ast.parse` removes the race at no
cost that matters (the emulator parses a few hundred short rules, once). The lock is reentrant:
a finalizer that parses, on the thread already parsing, must not deadlock.
"""

from __future__ import annotations

import ast
import functools
import sys
import threading
from typing import Any

from pipeline.local.patches import patch_once


def ast_build_is_thread_safe(version: tuple[int, int, int] | None = None) -> bool:
    """Whether this interpreter (or `version`) keeps the AST builder's depth count per call."""
    major_minor_micro = version or tuple(sys.version_info[:3])
    return not (
        (3, 11, 0) <= major_minor_micro < (3, 11, 8) or (3, 12, 0) <= major_minor_micro < (3, 12, 2)
    )


def install_parse_lock() -> None:
    """Serialise `ast.parse` process-wide where the interpreter needs it (idempotent)."""
    if ast_build_is_thread_safe():
        return
    patch_once(ast, "parse", _serialised, rule=__name__)


def _serialised(parse: Any) -> Any:
    one_at_a_time = threading.RLock()

    @functools.wraps(parse)
    def serialised_parse(*args: Any, **kwargs: Any) -> Any:
        with one_at_a_time:
            return parse(*args, **kwargs)

    return serialised_parse
