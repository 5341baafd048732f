"""moto's dispatcher, memoised per host: the same backends, each host's lookup done once."""

from __future__ import annotations

from typing import Any

import pytest
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from pipeline.local.dispatch_cache import install_dispatch_cache

HOSTS = [
    "s3.us-east-1.amazonaws.com",
    "sqs.us-east-1.amazonaws.com",
    "dynamodb",
    "states.us-east-1.amazonaws.com",
    "xray.us-east-1.amazonaws.com",
    "lambda.us-east-1.amazonaws.com",
    "moto_api",
    "no-such-service.example.com",
    None,
]


def test_memoised_lookup_gives_moto_s_own_answers_once_per_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = DomainDispatcherApplication.get_backend_for_host
    unwrapped = getattr(original, "__wrapped__", original)  # the session may have installed it
    fresh = DomainDispatcherApplication(create_backend_app)
    expected = {host: unwrapped(fresh, host) for host in HOSTS}
    assert expected["s3.us-east-1.amazonaws.com"] == "s3"
    assert expected["sqs.us-east-1.amazonaws.com"] == "sqs"
    calls: list[str | None] = []

    def counting(self: Any, host: str | None) -> Any:
        calls.append(host)
        return unwrapped(self, host)

    monkeypatch.setattr(DomainDispatcherApplication, "get_backend_for_host", counting)
    install_dispatch_cache()
    dispatcher = DomainDispatcherApplication(create_backend_app)
    for _ in range(3):
        assert {host: dispatcher.get_backend_for_host(host) for host in HOSTS} == expected
    assert calls == HOSTS  # every host looked up once, None and unknown hosts included
    other = DomainDispatcherApplication(create_backend_app)
    assert other.get_backend_for_host("s3.us-east-1.amazonaws.com") == "s3"
    assert calls[-1] == "s3.us-east-1.amazonaws.com"  # each dispatcher remembers its own


def test_installing_twice_wraps_once() -> None:
    install_dispatch_cache()
    first = DomainDispatcherApplication.get_backend_for_host
    install_dispatch_cache()
    assert DomainDispatcherApplication.get_backend_for_host is first
    assert first.is_memoised
