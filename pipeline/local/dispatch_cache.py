"""moto's server finds each request's service once per host, not on every request.

moto 5.2.5's server picks the backend of every request with
`DomainDispatcherApplication.get_backend_for_host(host)`, which lists moto's package directory
(`os.listdir` plus an `isdir` per entry, ~200) and then tries its URL patterns one by one: about
1 ms of CPU per request, measured, a third of what the server spends on an S3 GET of a photo
(BENCHMARKS.md "The whole flow on the embedded stack"). Its answer depends on the host string
alone — the directory and the patterns do not change while the server runs — so it is memoised
per host. Everything else about dispatch (the `/moto-api` paths, inferring the host from the
signature's credential scope) runs as before; only this pure lookup is remembered.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

_installed = threading.Lock()
_MISSING = object()


def install_dispatch_cache() -> None:
    """Memoise `get_backend_for_host` on moto's dispatcher (idempotent, process-wide)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication  # noqa: PLC0415

    with _installed:
        lookup = DomainDispatcherApplication.get_backend_for_host
        if getattr(lookup, "is_memoised", False):
            return
        DomainDispatcherApplication.get_backend_for_host = _memoised(lookup)


def _memoised(lookup: Any) -> Any:
    """`lookup(self, host)` remembered per dispatcher and host.

    A None answer is remembered too: moto then infers the host from the request's signature.
    """

    @functools.wraps(lookup)
    def get_backend_for_host(self: Any, host: str | None) -> Any:
        answers: dict[str | None, Any] = self.__dict__.setdefault("_backend_by_host", {})
        answer = answers.get(host, _MISSING)
        if answer is _MISSING:
            answer = answers[host] = lookup(self, host)
        return answer

    get_backend_for_host.is_memoised = True  # type: ignore[attr-defined]
    return get_backend_for_host
