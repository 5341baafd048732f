"""The Lambda artifact carries everything the handlers import, and nothing else is needed.

`make package` builds for arm64, which cannot be imported here; this builds the x86_64 twin
from the same tools/lambda.txt for the running interpreter (once per session), then imports
every handler and core module in a fresh interpreter whose only path is that folder (`-I -S`:
no site-packages, no PYTHONPATH, no working directory).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import config

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import package  # noqa: E402  # tools/ is not a package

pytestmark = pytest.mark.integration

CHECK = """
import importlib, sys
sys.path.insert(0, {folder!r})
for name in {modules!r}:
    module = importlib.import_module(name)
    assert module.__file__.startswith({folder!r}), (name, module.__file__)
for name in ("moto", "samtranslator", "typer", "rich", "pipeline.local", "pipeline.cli"):
    try:
        importlib.import_module(name)
    except ImportError:
        continue
    raise AssertionError(name + " is importable from the artifact")
print("imported", len({modules!r}))
"""


@pytest.fixture(scope="session")
def twin(tmp_path_factory) -> package.Artifact:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    out = tmp_path_factory.mktemp("twin")
    return package.build(out, arch="x86_64", python_version=version, is_zipped=False)


def _modules(folder: Path) -> list[str]:
    names = []
    for path in sorted([*folder.glob("handlers/*.py"), *folder.glob("pipeline/**/*.py")]):
        parts = path.relative_to(folder).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _function_env() -> dict[str, str]:
    """What the template gives every function, with dummy names (no call is made)."""
    names = {
        config.INPUT_BUCKET: "in",
        config.RESULTS_BUCKET: "results",
        config.SOURCE_BUCKETS: "images",
        config.WORK_QUEUE_URL: "https://sqs.us-east-1.amazonaws.com/123456789012/work",
        config.FAILURE_QUEUE_URL: "https://sqs.us-east-1.amazonaws.com/123456789012/failures",
        config.RUNS_TABLE: "runs",
        config.STATE_MACHINE_ARN: "arn:aws:states:us-east-1:123456789012:stateMachine:p",
    }
    return {
        **names,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_SERVICE_NAME": "lambdaflow",
    }


def test_handlers_and_core_import_from_the_artifact_alone(twin):
    modules = _modules(twin.path)
    assert "handlers._metrics" in modules and "pipeline.config" in modules
    code = CHECK.format(folder=str(twin.path), modules=modules)
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code],
        env=_function_env(),
        cwd=twin.path.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"imported {len(modules)}" in result.stdout


def test_the_artifact_has_no_cli_or_local_stack_and_fits_lambda(twin):
    assert not (twin.path / "pipeline" / "local").exists()
    assert not (twin.path / "pipeline" / "cli").exists()
    assert twin.unzipped_bytes < package.UNZIPPED_LIMIT_BYTES


def test_the_artifact_carries_every_preset_model(twin):
    from pipeline.classify.model_spec import PRESETS, file_sha256  # noqa: PLC0415

    for preset in PRESETS.values():
        assert file_sha256(twin.path / "models" / preset.file) == preset.sha256
