"""Recipe: Johnson et al.'s fast style network trained with perceptual losses from the frozen VGG.

One network learns N styles at once through conditional instance norm (Dumoulin et al.): each
sample in a batch is assigned a style and its own Gram targets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from impasto.features import Encoder, resolve_weights
from impasto.io import load_image, resize_long
from impasto.losses import TVLoss, gram_matrix
from impasto.models import files
from impasto.models.transformer import KIND, TransformerNet
from impasto.train.data import sample_generator
from impasto.train.loop import Context, Recipe

CONTENT_LAYER = "relu2_2"
STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")


@dataclass
class FastStyleOptions:
    styles: list[Path]
    size: int = 256
    style_size: int = 512
    content_weight: float = 1.0
    style_weight: float = 5.0
    tv_weight: float = 10.0
    lr: float = 1e-3
    width: int = 32
    backbone: str | None = None
    weights: str | None = None
    val_images: list[torch.Tensor] = field(default_factory=list)


def batch_relative_error(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``||x_i - t_i||^2 / ||t_i||^2`` (size-free, like the Gatys losses)."""
    dims = tuple(range(1, x.dim()))
    return ((x - target).pow(2).sum(dims) / (target.pow(2).sum(dims) + 1e-8)).mean()


class StyledPhotos(Dataset):
    """(photo crop, style index): the index drawn by (seed, epoch, sample index), never from the global
    RNG, so ranks under DDP, accumulation steps and resumed runs all agree on which style a sample gets."""

    def __init__(self, photos: Dataset, n_styles: int, seed: int = 0) -> None:
        self.photos, self.n_styles, self.seed, self.epoch = photos, n_styles, seed, 0

    def __len__(self) -> int:
        return len(self.photos)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if hasattr(self.photos, "epoch"):
            self.photos.epoch = self.epoch  # type: ignore[attr-defined]
        gen = sample_generator(self.seed + 3, self.epoch, index)
        return self.photos[index], torch.randint(0, self.n_styles, (), generator=gen)


class FastStyleRecipe(Recipe):
    def __init__(self, opts: FastStyleOptions) -> None:
        super().__init__()
        self.opts = opts
        self.style_names = [p.stem for p in opts.styles]

    def setup(self, ctx: Context) -> None:
        o = self.opts
        self.ctx = ctx
        weights = resolve_weights(o.backbone, o.weights)
        self.encoder = Encoder([CONTENT_LAYER, *STYLE_LAYERS], weights).to(ctx.device)
        self.weights_name = weights.entry.name
        with torch.no_grad():
            grams = []
            for path in o.styles:
                img = resize_long(load_image(path), o.style_size).to(ctx.device)
                feats = self.encoder(img, STYLE_LAYERS)
                grams.append({n: gram_matrix(feats[n])[0] for n in STYLE_LAYERS})
        self.targets = {n: torch.stack([g[n] for g in grams]) for n in STYLE_LAYERS}  # (S, C, C)
        net = TransformerNet(len(o.styles), o.width).to(ctx.device)
        self.models = {"net": net}
        self.optimizers = {"net": torch.optim.Adam(net.parameters(), lr=o.lr)}
        self.phases = {"net": ["net"]}
        self.tv = TVLoss(o.tv_weight)
        self._sample_content = [resize_long(v, o.size) for v in o.val_images[:3]]

    def _losses(self, x: torch.Tensor, style_index: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        o = self.opts
        mix = torch.nn.functional.one_hot(style_index, len(o.styles)).float()
        y = self.net("net")(x, mix)
        fy = self.encoder(y)
        with torch.no_grad():
            fx = self.encoder(x, [CONTENT_LAYER])
        content = batch_relative_error(fy[CONTENT_LAYER].float(), fx[CONTENT_LAYER].float())
        style = sum(batch_relative_error(gram_matrix(fy[n]), self.targets[n][style_index]) for n in STYLE_LAYERS)
        style = style / len(STYLE_LAYERS)
        tv = self.tv(y)
        total = o.content_weight * content + o.style_weight * style + tv
        logs = {"content": content, "style": style, "tv": tv, "total": total}
        return total, {k: float(v.detach()) for k, v in logs.items()}

    def loss(self, phase: str, batch: Any, cache: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        """``batch`` is (images, style indices) from :class:`StyledPhotos`: each sample's style is drawn
        with the sample, so every process layout and a resumed run train the same pairs."""
        x, idx = batch
        return self._losses(x, idx.to(x.device))

    def validate(self) -> dict[str, float]:
        if not self.opts.val_images:
            return {}
        sums: dict[str, float] = {}
        for i, img in enumerate(self.opts.val_images):
            x = resize_long(img, self.opts.size).to(self.ctx.device)
            for s in range(len(self.opts.styles)):
                _, logs = self._losses(x, torch.tensor([s], device=x.device))
                for k, v in logs.items():
                    sums[k] = sums.get(k, 0.0) + v
            del i
        n = len(self.opts.val_images) * len(self.opts.styles)
        return {k: v / n for k, v in sums.items()}

    def sample(self, step: int) -> Any:
        from impasto.sheet import grid

        if not self._sample_content:
            return None
        net = self.models["net"]
        cells = []
        for x in self._sample_content:
            cells.append(x)
            cells += [net(x.to(self.ctx.device), s).cpu() for s in range(len(self.opts.styles))]
        return grid(cells, columns=1 + len(self.opts.styles), cell=192)

    def export(self, path: Path, step: int) -> None:
        o = self.opts
        net: TransformerNet = self.models["net"]  # type: ignore[assignment]
        files.save(path, KIND, net.state_dict(), {
            "n_styles": net.n_styles, "width": net.width, "n_residual": net.n_residual,
            "styles": self.style_names, "backbone": self.weights_name, "steps": step, "size": o.size,
            "style_size": o.style_size, "content_weight": o.content_weight, "style_weight": o.style_weight,
            "tv_weight": o.tv_weight, "lr": o.lr, "content_layer": CONTENT_LAYER, "style_layers": list(STYLE_LAYERS),
        })
