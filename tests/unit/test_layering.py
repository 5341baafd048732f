"""The import graph runs one way: the tree reads like the flow, and no stage reaches up.

Every `import` in `pipeline/` (module level and inside functions alike: a lazy import is still a
dependency) is read with `ast` and checked against the stage order below. A stage may import
itself and any stage of a lower rank, never one of the same rank or above, so a new back-edge
fails here with the file and the line that made it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PIPELINE = ROOT / "pipeline"

RANKS: dict[str, int] = {
    "__init__": 0,
    "failures": 0,
    "allocator": 0,
    "s3_uri": 0,
    "config": 1,
    "aws": 2,
    "observe": 2,
    "gzip": 3,
    "manifest": 4,
    "parts": 5,
    "ledger": 6,
    "split": 7,
    "classify": 8,
    "replay": 8,
    "local": 9,
    "cli": 10,
}
"""Lowest first. Same rank, different stage: neither may import the other."""

LAMBDA_ONLY = ("handlers", "aws_lambda_powertools", "awslambdaric")
"""The core is Lambda-free: local/ finds handlers by name through importlib, never an import."""


def _stage(path: Path) -> str:
    return path.relative_to(PIPELINE).parts[0].removesuffix(".py")


def _imports(path: Path, source: str) -> list[tuple[int, str]]:
    """(line, dotted module) of every import in `source`, relative ones resolved."""
    package = ".".join(("pipeline", *path.relative_to(PIPELINE).with_suffix("").parts[:-1]))
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            if module == "pipeline":
                found.extend((node.lineno, f"pipeline.{alias.name}") for alias in node.names)
            else:
                found.append((node.lineno, module))
    return found


def back_edges(path: Path, source: str) -> list[str]:
    """Every import in `source` (as if it were `path`) that runs against the stage order."""
    stage = _stage(path)
    where = path.relative_to(ROOT)
    wrong = []
    for line, module in _imports(path, source):
        parts = module.split(".")
        if parts[0] in LAMBDA_ONLY:
            wrong.append(f"{where}:{line} imports {module}: the core knows nothing of Lambda")
        elif parts[0] == "pipeline" and len(parts) > 1 and parts[1] in RANKS:
            target = parts[1]
            if target != stage and RANKS[target] >= RANKS[stage]:
                wrong.append(
                    f"{where}:{line} imports {module}: {stage} (rank {RANKS[stage]}) may import"
                    f" only stages below it, not {target} (rank {RANKS[target]})"
                )
    return wrong


def _modules() -> list[Path]:
    return sorted(PIPELINE.rglob("*.py"))


def test_every_stage_has_a_rank():
    stages = {_stage(path) for path in _modules()}
    assert stages <= set(RANKS), f"give these a rank in RANKS: {sorted(stages - set(RANKS))}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PIPELINE)))
def test_imports_run_down_the_stages(path: Path):
    assert not back_edges(path, path.read_text())


@pytest.mark.parametrize(
    ("where", "source"),
    [
        ("manifest/reader.py", "from pipeline.classify.worker import ChunkWorker\n"),
        ("classify/worker.py", "def f():\n    from pipeline.replay import chunks\n"),
        ("ledger/table.py", "from ..split import chunking\n"),
        ("split/passes.py", "from pipeline.local import stack\n"),
        ("parts/store.py", "import handlers.classify\n"),
        ("cli/run.py", "from aws_lambda_powertools import Logger\n"),
    ],
)
def test_the_check_refuses_a_back_edge(where: str, source: str):
    """The check can fail: up-stage, sibling, relative, lazy and Lambda imports are caught."""
    assert back_edges(PIPELINE / where, source)


def test_the_check_allows_imports_down_the_stages():
    source = "from pipeline.manifest.parse import ManifestRecord\nfrom . import fetch\n"
    assert not back_edges(PIPELINE / "classify" / "worker.py", source)
