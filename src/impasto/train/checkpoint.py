"""Crash-safe training checkpoints: atomic (temp file, fsync, rename), last K kept, exact resume.

A checkpoint holds every model, optimizer, scheduler and grad-scaler state, all RNG states, the step
and the data position, plus whatever the recipe adds (e.g. CycleGAN's image pools). It is loaded with
``torch.load(weights_only=True)``: only tensors and plain Python values, never arbitrary pickles.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from impasto.errors import ModelFileError
from impasto.io import atomic_path

NAME = re.compile(r"^step_(\d{8})\.pt$")


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": _to_plain(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), *n[2:]))
    random.setstate(_to_tuple(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_plain(x: Any) -> Any:
    return [_to_plain(v) for v in x] if isinstance(x, tuple | list) else x


def _to_tuple(x: Any) -> Any:
    return tuple(_to_tuple(v) for v in x) if isinstance(x, list) else x


def checkpoint_paths(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if NAME.match(p.name))


def latest(folder: Path) -> Path | None:
    found = checkpoint_paths(folder)
    return found[-1] if found else None


def save(folder: Path, step: int, state: dict[str, Any], keep: int = 3) -> Path:
    """Write ``step_XXXXXXXX.pt`` atomically, then delete all but the newest ``keep``."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(".step_*.tmp"):  # left by a process killed while saving
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    target = folder / f"step_{step:08d}.pt"
    with atomic_path(target) as tmp, open(tmp, "wb") as fh:
        # through a Python file, not a path: torch's own writer reports a full disk as a bare
        # "unexpected pos" RuntimeError, a Python file as the OSError (ENOSPC) it is
        torch.save(state, fh)
    _fsync_dir(folder)
    for old in checkpoint_paths(folder)[:-keep] if keep > 0 else []:
        with contextlib.suppress(FileNotFoundError):
            old.unlink()
    return target


def load(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint's state, or one line saying why it cannot be used. PyTorch's own message is not
    passed on: for a damaged file it advises ``weights_only=False``, which would run whatever a
    crafted file holds."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # a checkpoint cut short by a kill is never renamed into place, but check
        raise ModelFileError(f"{path}: {_why_unreadable(path, exc)}") from exc
    if not isinstance(state, dict):
        raise ModelFileError(f"{path}: not an impasto training checkpoint")
    return state


def _why_unreadable(path: Path, exc: Exception) -> str:
    """What is wrong with a checkpoint torch could not load, in words (never torch's advice)."""
    try:
        size = path.stat().st_size
    except OSError:
        return "cannot be read"
    if size == 0:
        return "empty file (a save cut short, or a copy that failed)"
    if isinstance(exc, OSError):
        return f"cannot be read ({exc.strerror or type(exc).__name__})"
    return "corrupt or not a training checkpoint"


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
