"""Recipe: AdaIN decoder (optionally with an adversarial loss against real paintings).

Loss (Huang & Belongie 2017): content = relative error between the decoded image's relu4_1 features
and the AdaIN target t; style = relative error of per-channel mean/std at relu1_1..relu4_1 against
the style image; with ``adv_weight > 0`` an LSGAN PatchGAN judges stylized vs real style crops.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from impasto.errors import ModelFileError
from impasto.features import Encoder, resolve_weights
from impasto.io import resize_long
from impasto.losses import mean_std
from impasto.models import files
from impasto.models.adain import BOTTLENECK, ENCODER_LAYERS, Decoder, adain
from impasto.models.patchgan import PatchDiscriminator
from impasto.train.data import sample_generator
from impasto.train.fast_style import batch_relative_error
from impasto.train.loop import Context, Recipe

KIND = "adain-decoder"


class ContentStylePairs(Dataset):
    """(content crop, style crop): every content image with a style drawn by (seed, epoch, index)."""

    def __init__(self, content: Dataset, style: Dataset, seed: int = 0) -> None:
        self.content, self.style, self.seed, self.epoch = content, style, seed, 0

    def __len__(self) -> int:
        return len(self.content)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        for ds in (self.content, self.style):
            if hasattr(ds, "epoch"):
                ds.epoch = self.epoch  # type: ignore[attr-defined]
        gen = sample_generator(self.seed + 1, self.epoch, index)
        j = int(torch.randint(0, len(self.style), (1,), generator=gen))  # type: ignore[arg-type]
        return self.content[index], self.style[j]


@dataclass
class AdainOptions:
    style_weight: float = 10.0
    content_weight: float = 1.0
    adv_weight: float = 0.0
    lr: float = 1e-4
    slim: int = 1
    backbone: str | None = None
    weights: str | None = None
    val_pairs: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)


def style_stats_loss(feats: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
    total = torch.zeros((), device=next(iter(feats.values())).device)
    for n in ENCODER_LAYERS:
        m, s = mean_std(feats[n])
        mt, st = mean_std(targets[n])
        num = (m - mt).pow(2).sum(dim=(1, 2, 3)) + (s - st).pow(2).sum(dim=(1, 2, 3))
        den = mt.pow(2).sum(dim=(1, 2, 3)) + st.pow(2).sum(dim=(1, 2, 3)) + 1e-8
        total = total + (num / den).mean()
    return total / len(ENCODER_LAYERS)


class AdainRecipe(Recipe):
    def __init__(self, opts: AdainOptions) -> None:
        super().__init__()
        self.opts = opts

    def setup(self, ctx: Context) -> None:
        o = self.opts
        self.ctx = ctx
        weights = resolve_weights(o.backbone, o.weights)
        self.weights_name = weights.entry.name
        self.encoder = Encoder(ENCODER_LAYERS, weights).to(ctx.device)
        dec = Decoder(o.slim).to(ctx.device)
        self.models = {"decoder": dec}
        self.optimizers = {"decoder": torch.optim.Adam(dec.parameters(), lr=o.lr)}
        self.phases = {"decoder": ["decoder"]}
        if o.adv_weight > 0:
            disc = PatchDiscriminator().to(ctx.device)
            self.models["disc"] = disc
            self.optimizers["disc"] = torch.optim.Adam(disc.parameters(), lr=o.lr, betas=(0.5, 0.999))
            self.phases["disc"] = ["disc"]

    def _forward(self, content: torch.Tensor, style: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        with torch.no_grad():
            fc = self.encoder(content, [BOTTLENECK])[BOTTLENECK]
            fs = self.encoder(style)
            t = adain(fc, fs[BOTTLENECK])
        out = self.net("decoder")(t)
        return out, {"t": t, "fs": fs}

    def loss(self, phase: str, batch: Any, cache: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        content, style = batch
        o = self.opts
        if phase == "decoder":
            out, aux = self._forward(content, style)
            fo = self.encoder(out)
            c_loss = batch_relative_error(fo[BOTTLENECK].float(), aux["t"].float())
            s_loss = style_stats_loss(fo, aux["fs"])
            total = o.content_weight * c_loss + o.style_weight * s_loss
            logs = {"content": float(c_loss.detach()), "style": float(s_loss.detach())}
            if o.adv_weight > 0:
                adv = (self.models["disc"](out.clamp(0, 1)) - 1).pow(2).mean()
                total = total + o.adv_weight * adv
                logs["adv_g"] = float(adv.detach())
                cache["fake"] = out.detach().clamp(0, 1)
            logs["total"] = float(total.detach())
            return total, logs
        d = self.net("disc")
        real = (d(style) - 1).pow(2).mean()
        fake = d(cache["fake"]).pow(2).mean()
        loss = 0.5 * (real + fake)
        return loss, {"adv_d": float(loss.detach())}

    def validate(self) -> dict[str, float]:
        if not self.opts.val_pairs:
            return {}
        sums = {"content": 0.0, "style": 0.0}
        for c, s in self.opts.val_pairs:
            c, s = c.to(self.ctx.device), s.to(self.ctx.device)
            out, aux = self._forward(c, s)
            fo = self.encoder(out)
            sums["content"] += float(batch_relative_error(fo[BOTTLENECK].float(), aux["t"].float()))
            sums["style"] += float(style_stats_loss(fo, aux["fs"]))
        return {k: v / len(self.opts.val_pairs) for k, v in sums.items()}

    def sample(self, step: int) -> Any:
        from impasto.sheet import grid

        cells = []
        for c, s in self.opts.val_pairs[:4]:
            out, _ = self._forward(c.to(self.ctx.device), s.to(self.ctx.device))
            cells += [c, s, out.clamp(0, 1).cpu()]
        return grid(cells, columns=3, cell=192) if cells else None

    def export(self, path: Path, step: int) -> None:
        o = self.opts
        dec: Decoder = self.models["decoder"]  # type: ignore[assignment]
        files.save(path, KIND, dec.state_dict(), {
            "slim": dec.slim, "backbone": self.weights_name, "steps": step, "style_weight": o.style_weight,
            "content_weight": o.content_weight, "adv_weight": o.adv_weight, "lr": o.lr,
            "encoder_layers": list(ENCODER_LAYERS)})


def load_decoder(path: str | Path) -> tuple[Decoder, dict[str, Any]]:
    tensors, meta = files.load(path, KIND)
    dec = Decoder(int(meta.get("slim", 1)))
    try:
        dec.load_state_dict(tensors)
    except RuntimeError as exc:
        raise ModelFileError(f"{path}: tensors do not fit an AdaIN decoder ({exc})") from exc
    return dec.eval(), meta


def val_pairs(contents: list[torch.Tensor], styles: list[torch.Tensor], size: int
              ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(resize_long(c, size), resize_long(styles[i % len(styles)], size)) for i, c in enumerate(contents)]
