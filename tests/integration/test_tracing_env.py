"""An explicit daemon address wins over AWS_XRAY_DAEMON_ADDRESS (which the SDK lets win)."""

from __future__ import annotations

import socket

import pytest
from aws_xray_sdk.core import xray_recorder

from pipeline.observe import tracing
from pipeline.observe.tracing import xray_tracer

pytestmark = pytest.mark.integration


def test_explicit_daemon_address_beats_the_environment(monkeypatch):
    # GIVEN the environment naming another daemon (as a local function's environment does)
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as elsewhere,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as daemon,
    ):
        elsewhere.bind(("127.0.0.1", 0))
        daemon.bind(("127.0.0.1", 0))
        daemon.settimeout(5)
        monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", "{}:{}".format(*elsewhere.getsockname()))
        previous = tracing._active
        # WHEN a tracer is made for an explicit address and a segment ends
        xray_tracer(
            is_enabled=True, patch_sdk=False, daemon_address="{}:{}".format(*daemon.getsockname())
        )
        try:
            xray_recorder.begin_segment("explicit")
            xray_recorder.end_segment()
            # THEN the segment went to the explicit address
            assert b'"name": "explicit"' in daemon.recv(65_535).replace(b'":"', b'": "')
        finally:
            tracing.configure(previous)
