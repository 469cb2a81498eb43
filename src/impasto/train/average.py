"""A generator's exponential moving average (``--ema``), shared by the GAN recipes.

Why: GAN generators oscillate from step to step, most on a small folder; the average of the recent
ones is a steadier, usually better, generator (Karras et al. 2018, Yazici et al. 2019). The recipes
sample, validate and export the average; only the live generator is trained.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, TypeVar

import torch
from torch import nn

from impasto.errors import InputError

#: the names a GAN recipe gives its trained generator and its average (models, checkpoints)
LIVE, AVERAGE = "G", "G_ema"
T = TypeVar("T")


def check_decay(decay: float) -> None:
    if not 0 <= decay < 1:
        raise InputError(f"--ema must be in [0, 1), got {decay}")


def start_average(live: nn.Module) -> nn.Module:
    """A frozen copy of ``live`` (the pretrained weights when fine-tuning); never seen by an optimizer."""
    return copy.deepcopy(live).requires_grad_(False)


@torch.no_grad()
def update_average(average: nn.Module, live: nn.Module, decay: float, step: int) -> None:
    """One step of the average, its decay ramped up over the first steps ((1 + t) / (10 + t): 0.9 at
    step 80, 0.985 at 600, 0.99 from 890, 0.999 from 8,990) so a run from random weights does not keep
    them for long. Buffers (batch-norm statistics) are copied, not averaged."""
    d = min(decay, (1 + step) / (10 + step))
    for a, p in zip(average.parameters(), live.parameters(), strict=True):
        a.lerp_(p, 1 - d)
    for a, b in zip(average.buffers(), live.buffers(), strict=True):
        a.copy_(b)


def in_use(models: Mapping[str, T]) -> T:
    """What is sampled, validated, exported and fine-tuned from: the average when the run keeps one
    (modules, or a checkpoint's state dicts)."""
    return models.get(AVERAGE, models[LIVE])


def step_average(models: Mapping[str, Any], decay: float, step: int) -> None:
    """After each optimizer step: move the average, when the run keeps one, towards the live generator."""
    if AVERAGE in models:
        update_average(models[AVERAGE], models[LIVE], decay, step)
