"""Transfer for the generative trainers: start from a pretrained model file, run folder or checkpoint.

FreezeD (Mo et al. 2020) / frozen encoder blocks: the first layers of a network trained on a large
folder hold generic image features; keeping them fixed while the rest adapts lets a small new folder
be learned in fewer steps with less overfitting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from impasto.errors import InputError, ModelFileError
from impasto.models import files
from impasto.train.loop import Recipe


class TransferRecipe(Recipe):
    """A recipe that may start from a pretrained model and freeze its first blocks; the frozen
    parameter names go into the run's JSON record."""

    def __init__(self, opts: Any) -> None:
        super().__init__()
        self.opts = opts
        self.frozen: list[str] = []

    def summary(self) -> dict[str, Any]:
        return {"frozen_parameters": self.frozen}


def load_pretrained(source: str | Path, kind: str) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, Any]]:
    """{module name: state dict} and metadata from a ``kind`` model file (or a run folder holding one),
    or from a training checkpoint (``.pt``, loaded with ``weights_only``)."""
    p = Path(source)
    if p.suffix == ".pt":
        from impasto.train import checkpoint as ckpt

        if not p.is_file():
            raise InputError(f"--finetune-from: {p} does not exist")
        state = ckpt.load(p)
        return {k: dict(v) for k, v in state["models"].items()}, dict(state.get("extra", {}).get("meta", {}))
    return files.load_grouped(files.model_file(p), kind)


def load_into(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    try:
        files.load_into(module, state, what)
    except ModelFileError as exc:
        raise ModelFileError(f"--finetune-from: {exc} (the same --size and widths are needed)") from exc
