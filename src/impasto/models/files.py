"""impasto model files: safetensors (fp16 by default) with a JSON metadata header.

The header says what the file is (``kind``), the format version, and how it was made (backbone,
styles, training steps, preprocessing). :func:`load` checks ``kind`` before anything is built, so
handing a CycleGAN file to the fast-style loader is a clear error, not a shape mismatch.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as save_bytes

from impasto.errors import ModelFileError
from impasto.io import atomic_path

FORMAT_VERSION = 1


def model_file(model: str | Path) -> Path:
    """A model file, a run folder holding ``model.safetensors`` (what ``--out RUN`` writes), or the bare
    name of a model shipped in the package (``fast4``, ``monet``) when no such file or folder exists."""
    p = Path(model)
    if p.is_dir():
        return p / "model.safetensors"
    if not p.exists() and not p.suffix and len(p.parts) == 1:
        from impasto import bundled

        return bundled.models().get(p.name, p)
    return p


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
    data = save_bytes(cast, metadata=header)
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)  # Python's write reports a full disk as the OSError it is (io turns it into one line)
    return target


def short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters: an error message quotes what a file holds, and a
    crafted file can hold megabytes."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
    _check_version(p, header.get("format_version"))
    try:
        meta = json.loads(header.get("meta", "{}"))
    except ValueError as exc:
        raise ModelFileError(f"{p}: corrupt metadata") from exc
    if not isinstance(meta, dict):
        raise ModelFileError(f"{p}: corrupt metadata (a JSON object expected, got {type(meta).__name__})")
    return header["kind"], meta


def _check_version(path: Path, raw: str | None) -> None:
    """Refuse a file format this impasto does not know (a newer one may mean something else by a key)."""
    try:
        version = int(raw) if raw is not None else None
    except ValueError:
        version = None
    if version is None or version < 1:
        raise ModelFileError(f"{path}: invalid format_version {short(raw, 20)}")
    if version > FORMAT_VERSION:
        raise ModelFileError(f"{path}: format_version {version} is newer than this impasto reads "
                             f"({FORMAT_VERSION}); upgrade impasto")


def meta_int(meta: dict[str, Any], key: str, lo: int, hi: int, *, default: int | None = None,
             where: str | Path = "") -> int:
    """An integer of a model's metadata within [lo, hi], checked before it sizes a network: a missing
    key, a list, a negative width or 20,000 blocks become one line, not a traceback or gigabytes."""
    value = meta.get(key, default)
    if value is None:
        raise ModelFileError(f"{where}: metadata has no {key!r}")
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ModelFileError(f"{where}: metadata {key!r} must be a whole number from {lo} to {hi}, got {short(value)}")
    return value


def meta_choice(meta: dict[str, Any], key: str, choices: tuple[int, ...], *, where: str | Path = "") -> int:
    """An integer of the metadata that must be one of ``choices`` (e.g. the image sizes a generator has)."""
    value = meta_int(meta, key, min(choices), max(choices), where=where)
    if value not in choices:
        raise ModelFileError(f"{where}: metadata {key!r} must be one of {choices}, got {value}")
    return value


M = TypeVar("M", bound=torch.nn.Module)


def check_shapes(path: str | Path, build: Callable[[], torch.nn.Module], tensors: dict[str, torch.Tensor],
                 what: str) -> None:
    """Compare the file's tensors with the network its metadata describes, built on PyTorch's meta
    device (shapes only, no memory), before the real one is: a small file claiming a huge network
    is refused in one line instead of allocating it."""
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in build().state_dict().items()}
    missing = sorted(expected.keys() - tensors.keys())
    extra = sorted(tensors.keys() - expected.keys())
    wrong = [k for k in expected if k in tensors and tuple(tensors[k].shape) != expected[k]]
    if missing or extra or wrong:
        if wrong:
            k = wrong[0]
            detail = f"{short(k, 50)} is {tuple(tensors[k].shape)}, the metadata says {expected[k]}"
        else:
            example = short((missing or extra)[0], 50)
            detail = f"{len(missing)} tensor(s) missing, {len(extra)} unexpected (e.g. {example})"
        raise ModelFileError(f"{path}: the {what} does not match its metadata: {detail}")


def build_checked(path: str | Path, build: Callable[[], M], tensors: dict[str, torch.Tensor], what: str) -> M:
    """The network ``build`` makes, with the file's tensors in it: shapes checked on the meta device
    first (:func:`check_shapes`), so every loader refuses a mismatched file before allocating anything."""
    check_shapes(path, build, tensors, what)
    net = build()
    load_into(net, tensors, what)
    return net


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
        raise ModelFileError(f"{path}: is a {short(found, 40)} model, not {kind!r}")
    try:
        tensors: dict[str, torch.Tensor] = {}
        with safe_open(str(path), framework="pt") as fh:
            for key in fh.keys():  # noqa: SIM118 (safe_open is not a dict)
                t = fh.get_tensor(key)
                tensors[key] = t.to(dtype) if t.is_floating_point() else t
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFileError(f"{path}: corrupt model file ({str(exc)[:120]})") from exc
    _check_finite(path, tensors)
    return tensors, meta


def _check_finite(path: str | Path, tensors: dict[str, torch.Tensor]) -> None:
    """Refuse NaN or infinite weights at load: such a network turns every photo into a black picture."""
    for key, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ModelFileError(f"{path}: tensor {short(key, 50)} holds NaN or infinite values; the model is "
                                 "broken (retrain or re-export it)")
