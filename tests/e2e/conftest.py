"""Fixtures of the end-to-end tests that drive the `lambdaflow` command as a person would."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.cli.stack_target import stack_info
from pipeline.local.state import STATE_FILE, write_state


@pytest.fixture
def stack_dir(local_stack, tmp_path) -> Path:
    """A directory where `lambdaflow up` would have published the session's stack."""
    write_state(stack_info(local_stack), tmp_path / STATE_FILE)
    return tmp_path
