"""Where a running `lambdaflow up` says where it is, so other commands can find it.

`lambdaflow up` writes `.lambdaflow/stack.json` in its working directory; every other command
run there or in a subfolder reads it. A file left behind by a stack that
died is recognised as stale (its process is gone or its endpoint does not answer) and ignored.
"""

from __future__ import annotations

import contextlib
import json
import os
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.local.emulator import DUMMY_CREDENTIALS, LOCAL_REGION

STATE_FILE = Path(".lambdaflow") / "stack.json"
_PROBE_TIMEOUT_S = 15.0
"""How long a live stack's server may take to answer the probe. A stale file's port refuses at
once, so only a busy stack waits: at 2 s, a `replay --wait` started while the stress test's
duplicates, crashes and moves kept the stack's one process busy was told there was no stack."""


@dataclass(frozen=True, slots=True)
class StackInfo:
    """How to reach a stack: its endpoint (None on AWS) and the template's Outputs."""

    name: str
    outputs: Mapping[str, str]
    endpoint_url: str | None = None
    region: str = LOCAL_REGION
    pid: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def input_bucket(self) -> str:
        """Where manifests are dropped."""
        return self.outputs["InputBucketName"]

    @property
    def results_bucket(self) -> str:
        """Where results, failures and summaries land."""
        return self.outputs["ResultsBucketName"]

    @property
    def images_bucket(self) -> str | None:
        """The allowlisted source bucket the stack created, if any."""
        return self.outputs.get("ImagesBucketName")

    @property
    def client_env(self) -> dict[str, str]:
        """Environment variables that point the SDK at this stack (empty on AWS)."""
        if self.endpoint_url is None:
            return {}
        return {"AWS_ENDPOINT_URL": self.endpoint_url, **DUMMY_CREDENTIALS}

    def to_dict(self) -> dict[str, Any]:
        """The state file's JSON shape; also what `lambdaflow up --json` prints, flattened."""
        return {
            "stack": self.name,
            "endpoint_url": self.endpoint_url,
            "region": self.region,
            "pid": self.pid,
            "input_bucket": self.input_bucket,
            "results_bucket": self.results_bucket,
            "images_bucket": self.images_bucket,
            "outputs": dict(self.outputs),
            "env": self.client_env,
            **self.extra,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StackInfo:
        """Read back what `to_dict` wrote."""
        return cls(
            name=data["stack"],
            outputs=data["outputs"],
            endpoint_url=data.get("endpoint_url"),
            region=data.get("region", LOCAL_REGION),
            pid=data.get("pid"),
        )


def write_state(info: StackInfo, path: Path = STATE_FILE) -> None:
    """Publish `info` for other commands (atomically: write, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info.to_dict(), indent=2), encoding="utf-8")
    tmp.replace(path)


def clear_state(path: Path = STATE_FILE) -> None:
    """Remove the state file (the stack is stopping)."""
    path.unlink(missing_ok=True)


def _is_alive(pid: int | None) -> bool:
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _answers(endpoint_url: str) -> bool:
    with contextlib.suppress(OSError):
        # moto's own API: cheap, and proves it is a moto server, not just an open port.
        url = f"{endpoint_url}/moto-api/"
        with urllib.request.urlopen(url, timeout=_PROBE_TIMEOUT_S):
            return True
    return False


def state_file_here(start: Path | None = None) -> Path | None:
    """The state file of this directory or the nearest parent that has one, if any."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / STATE_FILE
        if candidate.is_file():
            return candidate
    return None


def find_running_stack(path: Path | None = None) -> StackInfo | None:
    """The stack a `lambdaflow up` is running, or None when there is none (or only a stale file).

    Without `path`, the state file of this directory or the nearest parent that has one: a
    command run from a subfolder of the project finds the stack, as git finds its repository.
    """
    path = path or state_file_here()
    if path is None:
        return None
    try:
        info = StackInfo.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError):
        return None
    if not _is_alive(info.pid) or (info.endpoint_url and not _answers(info.endpoint_url)):
        return None
    return info
