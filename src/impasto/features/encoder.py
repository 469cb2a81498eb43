"""The multi-layer encoder: image in [0,1] -> {layer name: activation}, stopping at the deepest layer.

This is the transfer-learning core: an ImageNet VGG, frozen by default, reused as the feature
extractor and loss network by every method in impasto.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable

import torch
from torch import nn

from impasto.errors import InputError, WeightsError
from impasto.features.vgg import VGG, Pooling, layer_names
from impasto.features.weights import DEFAULT_FOR_BACKBONE, StateDict, Weights

_STATE_CACHE: dict[tuple[str, str | None], StateDict] = {}
_LOCK = threading.Lock()


def pretrained_state(weights: Weights, path: str | os.PathLike[str] | None = None) -> StateDict:
    """Weights tensors, read once per process (reading and hashing 60 MB is not free)."""
    key = (weights.entry.name, str(path) if path else None)
    with _LOCK:
        if key not in _STATE_CACHE:
            _STATE_CACHE[key] = weights.entry.state_dict(path)
        return _STATE_CACHE[key]


def resolve_weights(backbone: str | None = None, weights: str | Weights | None = None) -> Weights:
    """``--backbone``/``--weights`` to an entry; the backbone's default when weights are not named."""
    if isinstance(weights, Weights):
        w = weights
    elif weights:
        w = Weights.from_name(weights)
    elif backbone:
        if backbone not in DEFAULT_FOR_BACKBONE:
            raise InputError(f"unknown backbone {backbone!r}; choose from vgg16, vgg19")
        return DEFAULT_FOR_BACKBONE[backbone]
    else:
        return Weights.VGG16_KERAS_OFFLINE
    if backbone and w.entry.arch != backbone:
        raise InputError(f"weights {w.entry.name} are for {w.entry.arch}, not {backbone}")
    return w


class Encoder(nn.Module):
    """Named VGG activations for the requested layers; runs only as deep as the deepest one."""

    def __init__(
        self,
        layers: Iterable[str],
        weights: Weights = Weights.VGG16_KERAS_OFFLINE,
        *,
        pooling: Pooling = "max",
        weights_path: str | os.PathLike[str] | None = None,
        trainable: bool = False,
        pretrained: bool = True,
    ) -> None:
        super().__init__()
        self.weights = weights
        self.preprocess = weights.entry.preprocess
        arch = weights.entry.arch
        valid = layer_names(arch)
        self.layers = list(dict.fromkeys(layers))
        if not self.layers:
            raise InputError("no encoder layers requested")
        unknown = [n for n in self.layers if n not in valid]
        if unknown:
            raise InputError(f"unknown {arch} layer(s) {', '.join(unknown)}; valid: {', '.join(valid)}")
        deepest = max(valid.index(n) for n in self.layers)
        vgg = VGG(arch, pooling)
        if pretrained:
            state = pretrained_state(weights, weights_path)
            wanted = {k: v for k, v in state.items() if int(k.split(".")[1]) <= deepest}
            missing = [k for k, p in vgg.state_dict().items() if int(k.split(".")[1]) <= deepest and k not in wanted]
            if missing:
                raise WeightsError(f"{weights.entry.name}: missing tensors {missing[:3]}")
            for k, v in wanted.items():
                target = vgg.state_dict()[k]
                if target.shape != v.shape:
                    raise WeightsError(
                        f"{weights.entry.name}: {k} has shape {tuple(v.shape)}, need {tuple(target.shape)}"
                    )
            vgg.load_state_dict(wanted, strict=False)
        self.names = valid[: deepest + 1]
        self.body = nn.Sequential(*list(vgg.features.children())[: deepest + 1])
        self.set_trainable(trainable)

    def set_trainable(self, trainable: bool) -> None:
        """Frozen (the default) for losses; switch on for fine-tuning."""
        for p in self.parameters():
            p.requires_grad_(trainable)
        self.train(trainable)

    def forward(self, image: torch.Tensor, layers: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
        wanted = set(self.layers if layers is None else layers)
        x = self.preprocess(image)
        out: dict[str, torch.Tensor] = {}
        previous = ""
        for name, module in zip(self.names, self.body, strict=True):
            # a ReLU may overwrite its convolution's output unless that output was asked for: one large
            # tensor less per layer (autograd allows it, a convolution's backward needs only its input)
            x = torch.relu_(x) if isinstance(module, nn.ReLU) and previous not in wanted else module(x)
            previous = name
            if name in wanted:
                out[name] = x
                if len(out) == len(wanted):
                    break
        return out
