"""Adaptive weighting: one ``strength`` that means the same balance on every content/style pair.

Hand-set weights mean different things on different pairs: how far a photo is from a painting in Gram
terms varies by orders of magnitude between pairs and between VGG layers. So before optimizing, the
pair is measured at the first (coarsest) scale:

* per style layer l: ``d_l`` = Gram distance of the *content image* to the style (the style gap);
  layer weights ``1 / d_l`` make every layer's gap count the same (no layer dominates);
* content: ``r`` = content distance of the *style image resized to the content's shape* (an image
  with the style's textures and none of the content's structure); content weight ``1 / r``.

In those units both terms run from about 1 (nothing of it) to 0 (all of it), so the objective is
``C/r + K g(s) * mean_l(S_l / d_l)`` where ``g`` rises from 0 at strength 0 through 1 at 0.5 to
``G_MAX`` at 1. ``K`` was chosen so strength 0.5 equals, on average over the study pairs, the balance
of the fixed default weights (``benchmarks/adaptive_balance.py``). Deterministic: same inputs, same
weights; the record returns them so a run can be repeated or tuned by hand.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from impasto.device import autocast
from impasto.features import Encoder
from impasto.io import resize
from impasto.losses import ContentLoss, GramStyleLoss

#: style emphasis at strength 0.5 in calibrated units (geometric mean of the default weights' balance
#: over the 12 study pairs at 256 px; see benchmarks/README.md)
K = 5.2
#: style emphasis at strength 1, relative to strength 0.5: strong, but the content term never vanishes
G_MAX = 30.0
_BETA = 2 * math.log(G_MAX - 1)
MIN_GAP = 1e-4  # a layer where content and style already agree is not amplified without bound


def strength_gain(strength: float) -> float:
    """g(s): 0 at 0, 1 at 0.5, G_MAX at 1, smooth and increasing (exponential in between)."""
    if not 0 <= strength <= 1:
        raise ValueError(f"strength must be between 0 and 1, got {strength}")
    return (math.exp(_BETA * strength) - 1) / (math.exp(_BETA / 2) - 1)


@dataclass
class Calibration:
    strength: float
    content_weight: float
    style_weight: float
    layer_weights: dict[str, float]
    content_reference: float
    style_gaps: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@torch.no_grad()
def measure(encoder: Encoder, content: torch.Tensor, style_loss: GramStyleLoss, content_layers: Sequence[str],
            reference_style: torch.Tensor, device: torch.device, dtype: torch.dtype | None
            ) -> tuple[float, dict[str, float]]:
    """(content distance of the style image, per-layer Gram distance of the content image) at this scale."""
    with autocast(device, dtype):
        fc = encoder(content)
        ref = resize(reference_style.to(content.device), tuple(content.shape[-2:]))  # type: ignore[arg-type]
        fr = encoder(ref)
    r = sum(float(ContentLoss(n, fc[n])(fr)) for n in content_layers) / len(content_layers)
    gaps = {n: float(v) for n, v in style_loss.per_layer(fc).items()}
    return r, gaps


def calibrate(strength: float, content_reference: float, style_gaps: dict[str, float]) -> Calibration:
    """The weights for ``strength`` from the pair's measurements (see the module docstring)."""
    gain = strength_gain(strength)
    return Calibration(
        strength=strength, content_weight=1.0 / max(content_reference, MIN_GAP), style_weight=K * gain,
        layer_weights={n: 1.0 / max(g, MIN_GAP) for n, g in style_gaps.items()},
        content_reference=content_reference, style_gaps=style_gaps)
