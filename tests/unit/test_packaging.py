"""tools/lambda.txt — the Lambda's dependencies — stays what uv.lock says."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)", re.MULTILINE)


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _locked_versions() -> dict[str, set[str]]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    versions: dict[str, set[str]] = {}
    for package in lock["package"]:
        versions.setdefault(_normalise(package["name"]), set()).add(package["version"])
    return versions


def test_every_lambda_pin_is_the_locked_version():
    locked = _locked_versions()
    pins = PIN.findall((ROOT / "tools" / "lambda.txt").read_text())
    assert pins, "tools/lambda.txt has no pins"
    stale = [f"{n}=={v}" for n, v in pins if v not in locked.get(_normalise(n), set())]
    assert not stale, f"tools/lambda.txt is stale, run `make lambda-requirements`: {stale}"


def test_every_direct_lambda_dependency_is_pinned_and_the_local_stack_is_not():
    wanted = {
        _normalise(re.split(r"[\[<>=;\s]", line, maxsplit=1)[0])
        for line in (ROOT / "tools" / "lambda.in").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    pinned = {_normalise(n) for n, _ in PIN.findall((ROOT / "tools" / "lambda.txt").read_text())}
    assert wanted <= pinned, f"run `make lambda-requirements`: {sorted(wanted - pinned)}"
    assert not pinned & {"moto", "aws-sam-translator", "typer", "rich", "flask", "cfn-lint"}
