"""Build the Lambda deployment artifact without Docker: `make package`.

`sam build` needs Docker (or a matching host) to build native wheels for arm64; every native
dependency here ships manylinux wheels, so installing those wheels for the target platform into
a folder is the whole build. The folder holds the pinned dependencies of tools/lambda.txt
(compiled from uv.lock: the Lambda gets exactly the locked versions, without the local-stack
and CLI packages — moto, samtranslator, typer, rich), the `pipeline` core without `cli/` and
`local/`, `handlers/`, and the model. `sam deploy` uploads it as the functions' `CodeUri`.

The same requirements install for any platform, so the tests build an x86_64 twin for the
running interpreter and import every handler from it with nothing else on `sys.path`.

    .venv/bin/python tools/package.py                  # arm64 / 3.12: .build/lambda, zip, sizes
    .venv/bin/python tools/package.py --arch x86_64 --python 3.11 --no-zip --out /tmp/twin
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "tools" / "lambda.txt"
UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024
"""Lambda: function code + layers, unzipped."""
ZIPPED_LIMIT_BYTES = 50 * 1024 * 1024
"""Lambda: a zip uploaded directly; through S3 (what `sam deploy` does) only the unzipped
limit applies."""
PLATFORMS = {"arm64": "aarch64-manylinux_2_28", "x86_64": "x86_64-manylinux_2_28"}
"""Lambda's python3.12 runtime is Amazon Linux 2023 (glibc 2.34): manylinux_2_28 wheels run."""
_EXCLUDED_PACKAGES = ("pipeline/cli", "pipeline/local")
_EXCLUDED_NAMES = shutil.ignore_patterns("__pycache__", "*.pyc", ".build", "build.py")
_FIXED_ZIP_TIME = (2020, 1, 1, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class Artifact:
    """A built function folder and, when zipped, its archive."""

    path: Path
    zip_path: Path | None

    @property
    def unzipped_bytes(self) -> int:
        """Sum of file sizes, as Lambda counts them."""
        return sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())

    @property
    def zipped_bytes(self) -> int | None:
        """Size of the archive, if built."""
        return self.zip_path.stat().st_size if self.zip_path else None


def _uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if found is None:
        raise SystemExit("uv not found: run `make setup` first")
    return found


def install_dependencies(target: Path, *, arch: str, python_version: str) -> None:
    """Install the wheels of tools/lambda.txt for `arch` and `python_version` (hashes checked)."""
    subprocess.run(
        [
            _uv(),
            "pip",
            "install",
            "--quiet",
            "--target",
            str(target),
            "--python-platform",
            PLATFORMS[arch],
            "--python-version",
            python_version,
            "--only-binary",
            ":all:",
            "--require-hashes",
            "-r",
            str(REQUIREMENTS),
        ],
        check=True,
    )


def copy_code(target: Path) -> None:
    """The core (minus CLI and local stack), the handlers, and the model files."""
    for package in ("pipeline", "handlers"):
        shutil.copytree(ROOT / package, target / package, ignore=_EXCLUDED_NAMES)
    for excluded in _EXCLUDED_PACKAGES:
        shutil.rmtree(target / excluded, ignore_errors=True)
    models = target / "models"
    models.mkdir(exist_ok=True)
    for model in sorted((ROOT / "models").glob("*.tflite")):
        shutil.copy2(model, models / model.name)


def zip_folder(folder: Path, zip_path: Path) -> None:
    """A reproducible zip: sorted entries, fixed timestamps, deflate level 9."""
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(str(file.relative_to(folder)), _FIXED_ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, file.read_bytes(), compresslevel=9)


def build(out: Path, *, arch: str, python_version: str, is_zipped: bool) -> Artifact:
    """Build the function folder `out/function` (and `out/function.zip`) from scratch."""
    folder = out / "function"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    install_dependencies(folder, arch=arch, python_version=python_version)
    copy_code(folder)
    zip_path = None
    if is_zipped:
        zip_path = out / "function.zip"
        zip_folder(folder, zip_path)
    return Artifact(folder, zip_path)


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


def main() -> int:
    """Build, print the sizes against Lambda's limits; exit 1 when over the unzipped limit."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--arch", choices=sorted(PLATFORMS), default="arm64")
    parser.add_argument("--python", default="3.12", help="Lambda runtime's Python version")
    parser.add_argument("--out", type=Path, default=ROOT / ".build" / "lambda")
    parser.add_argument("--no-zip", action="store_true")
    args = parser.parse_args()
    artifact = build(
        args.out, arch=args.arch, python_version=args.python, is_zipped=not args.no_zip
    )
    unzipped = artifact.unzipped_bytes
    print(f"{artifact.path}: {_mb(unzipped)} unzipped (limit {_mb(UNZIPPED_LIMIT_BYTES)})")
    if artifact.zipped_bytes is not None:
        zipped = artifact.zipped_bytes
        note = "ok for a direct upload" if zipped <= ZIPPED_LIMIT_BYTES else "deploy through S3"
        print(f"{artifact.zip_path}: {_mb(zipped)} zipped ({note}; sam deploy uses S3)")
    return 0 if unzipped <= UNZIPPED_LIMIT_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())
