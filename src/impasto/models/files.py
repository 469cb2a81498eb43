"""impasto model files: safetensors (fp16 by default) with a JSON metadata header.

The header says what the file is (``kind``), the format version, and how it was made (backbone,
styles, training steps, preprocessing). :func:`load` checks ``kind`` before anything is built, so
handing a CycleGAN file to the fast-style loader is a clear error, not a shape mismatch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from impasto.errors import ModelFileError
from impasto.io import atomic_path

FORMAT_VERSION = 1


def model_file(model: str | Path) -> Path:
    """A model file, or a run folder holding ``model.safetensors`` (what ``--out RUN`` writes)."""
    p = Path(model)
    return p / "model.safetensors" if p.is_dir() else p


def save(path: str | Path, kind: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any], *,
         dtype: torch.dtype = torch.float16) -> Path:
    """Write tensors (floats cast to ``dtype``) and ``meta`` atomically."""
    target = Path(path)
    if target.suffix != ".safetensors":
        raise ModelFileError(f"{target}: model files end in .safetensors")
    target.parent.mkdir(parents=True, exist_ok=True)
    cast = {k: (v.detach().to(dtype) if v.is_floating_point() else v.detach()).contiguous().cpu()
            for k, v in tensors.items()}
    header = {"kind": kind, "format_version": str(FORMAT_VERSION), "meta": json.dumps(meta)}
    with atomic_path(target) as tmp:
        save_file(cast, str(tmp), metadata=header)
    return target


def read_meta(path: str | Path) -> tuple[str, dict[str, Any]]:
    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"{p}: no such model file")
    try:
        with safe_open(str(p), framework="pt") as fh:
            header = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFileError(f"{p}: not an impasto model file (corrupt or not safetensors)") from exc
    if "kind" not in header:
        raise ModelFileError(f"{p}: safetensors file without impasto metadata")
    try:
        return header["kind"], json.loads(header.get("meta", "{}"))
    except ValueError as exc:
        raise ModelFileError(f"{p}: corrupt metadata") from exc


def flat(modules: dict[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    """One tensor dict with ``module.`` prefixes, for a model file holding several networks."""
    return {f"{name}.{k}": v for name, m in modules.items() for k, v in m.state_dict().items()}


def load_grouped(path: str | Path, kind: str) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, Any]]:
    """{network name: state dict} and metadata of a file written from :func:`flat`."""
    tensors, meta = load(path, kind)
    grouped: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        module, _, rest = key.partition(".")
        grouped.setdefault(module, {})[rest] = value
    return grouped, meta


def load_into(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """Load ``state`` into ``module`` in fp32, or say in one line why it does not fit."""
    try:
        module.load_state_dict({k: v.to(torch.float32) if v.is_floating_point() else v for k, v in state.items()})
    except RuntimeError as exc:
        raise ModelFileError(f"the {what} in this file does not fit the network its metadata describes: "
                             f"{str(exc).splitlines()[0][:200]}") from exc


def load(path: str | Path, kind: str, *, dtype: torch.dtype = torch.float32
         ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors (cast to ``dtype``) and metadata of a model file that must be of ``kind``."""
    found, meta = read_meta(path)
    if found != kind:
        raise ModelFileError(f"{path}: is a {found!r} model, not {kind!r}")
    try:
        tensors: dict[str, torch.Tensor] = {}
        with safe_open(str(path), framework="pt") as fh:
            for key in fh.keys():  # noqa: SIM118 (safe_open is not a dict)
                t = fh.get_tensor(key)
                tensors[key] = t.to(dtype) if t.is_floating_point() else t
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFileError(f"{path}: corrupt model file ({exc})") from exc
    return tensors, meta
