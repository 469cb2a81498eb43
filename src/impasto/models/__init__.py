"""Networks: transformer (fast style), adain, patchgan, cyclegan, dcgan, vae; model files in ``files``."""

from __future__ import annotations

from torch import nn


def freeze_first(blocks: nn.ModuleList, k: int, limit: int, option: str) -> list[str]:
    """Stop gradients to the first ``k`` of ``blocks`` (0 <= k <= limit) for transfer learning;
    returns the frozen parameter names, ``blocks.i.name``, for the run record and the tests."""
    if not 0 <= k <= limit:
        raise ValueError(f"{option} must be between 0 and {limit}, got {k}")
    names = []
    for i in range(k):
        for name, p in blocks[i].named_parameters():
            p.requires_grad_(False)
            names.append(f"blocks.{i}.{name}")
    return names
