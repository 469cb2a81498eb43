"""Recipe: AdaIN decoder (optionally with an adversarial loss against real paintings).

Loss (Huang & Belongie 2017): content = relative error between the decoded image's relu4_1 features
and the AdaIN target t; style = relative error of per-channel mean/std at relu1_1..relu4_1 against
the style image; with ``gram_weight > 0`` also the relative Gram-matrix error at relu1_1..relu5_1 (the
Gatys criterion's style term, which sees channel covariances and relu5_1 where mean/std do not); with
``adv_weight > 0`` an LSGAN PatchGAN judges stylized vs real style crops.
A skip decoder (``arch="skip"``) gets the AdaIN targets of its skip levels too (see
:class:`impasto.models.adain.SkipDecoder`); ``strength`` is drawn per sample during training
(``strength_range``) so every strength a user picks is one the decoder has seen.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from impasto.errors import InputError
from impasto.features import Encoder, resolve_weights
from impasto.io import resize_long
from impasto.losses import gram_matrix, mean_std
from impasto.metrics import STYLE_LAYERS
from impasto.models.adain import (
    BOTTLENECK,
    ENCODER_LAYERS,
    AnyDecoder,
    Decoder,
    SkipDecoder,
    adain,
    decoder_meta,
    load_decoder,
    save_decoder,
    wct,
)
from impasto.models.patchgan import PatchDiscriminator
from impasto.train.data import sample_generator
from impasto.train.fast_style import batch_relative_error
from impasto.train.loop import Context, Recipe


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
    gram_weight: float = 0.0
    lr: float = 1e-4
    slim: int = 1
    arch: str = "plain"
    skips: tuple[str, ...] = ("relu3_1", "relu2_1")
    skip_scale: float = 1.0
    #: levels whose target is WCT (whitening-colouring) instead of AdaIN; may differ from an --init file's
    wct_levels: tuple[str, ...] = ()
    #: training draws each sample's strength uniformly from this range (1, 1: always the full target)
    strength_range: tuple[float, float] = (1.0, 1.0)
    #: where to write the decoder each time its validation loss is the best so far (None: nowhere)
    best_path: Path | None = None
    #: start from this saved decoder (its architecture; fresh optimizer) instead of random weights
    init: Path | None = None
    #: what the model file's metadata says it was trained on
    data: str = ""
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


#: the layers the Gram term compares: those of the style distance the arbitrary-style benchmark reports
GRAM_LAYERS = STYLE_LAYERS


def gram_style_loss(feats: dict[str, torch.Tensor], style: dict[str, torch.Tensor],
                    content: dict[str, torch.Tensor], strength: torch.Tensor | None) -> torch.Tensor:
    """Mean over GRAM_LAYERS of ``||G(out) - G_t||^2 / ||G_t||^2`` per sample, where G_t is the painting's
    Gram matrix or, at a strength a < 1, ``a G(painting) + (1 - a) G(photo)``."""
    total = torch.zeros((), device=next(iter(feats.values())).device)
    for n in GRAM_LAYERS:
        target = gram_matrix(style[n].float())
        if strength is not None:
            a = strength.view(-1, 1, 1).float()
            target = a * target + (1 - a) * gram_matrix(content[n].float())
        num = (gram_matrix(feats[n].float()) - target).pow(2).sum(dim=(1, 2))
        total = total + (num / target.pow(2).sum(dim=(1, 2)).clamp_min(1e-12)).mean()
    return total / len(GRAM_LAYERS)


class AdainRecipe(Recipe):
    def __init__(self, opts: AdainOptions) -> None:
        super().__init__()
        self.opts = opts

    def setup(self, ctx: Context) -> None:
        o = self.opts
        self.ctx = ctx
        weights = resolve_weights(o.backbone, o.weights)
        self.weights_name = weights.entry.name
        layers = tuple(dict.fromkeys((*ENCODER_LAYERS, *GRAM_LAYERS))) if o.gram_weight > 0 else ENCODER_LAYERS
        self.encoder = Encoder(layers, weights).to(ctx.device)
        #: where the weights started (an --init file and the steps it had); a resumed run keeps the
        #: checkpoint's, not whatever --init the resuming command line names
        self.origin: dict[str, Any] = {}
        dec = self._decoder().to(ctx.device)
        self.best: float | None = None
        self.models = {"decoder": dec}
        self.optimizers = {"decoder": torch.optim.Adam(dec.parameters(), lr=o.lr)}
        self.phases = {"decoder": ["decoder"]}
        if o.adv_weight > 0:
            disc = PatchDiscriminator().to(ctx.device)
            self.models["disc"] = disc
            self.optimizers["disc"] = torch.optim.Adam(disc.parameters(), lr=o.lr, betas=(0.5, 0.999))
            self.phases["disc"] = ["disc"]

    def _decoder(self) -> AnyDecoder:
        """A fresh decoder as the flags describe it, or the ``init`` file's (fine-tuning: the file says
        the architecture, and flags that disagree are refused rather than silently ignored)."""
        o = self.opts
        fresh = SkipDecoder(o.slim, o.skips, o.skip_scale) if o.arch == "skip" else Decoder(o.slim)
        bad = [n for n in o.wct_levels if n not in fresh.levels]
        if bad:
            raise InputError(f"--wct-levels {','.join(bad)}: this decoder reads only {','.join(fresh.levels)}")
        fresh.wct_levels = tuple(o.wct_levels)
        if o.init is None:
            return fresh
        dec, meta = load_decoder(o.init)
        self.origin = {"init": str(o.init), "init_steps": int(meta.get("total_steps", meta.get("steps", 0)))}
        if list(dec.wct_levels) != list(o.wct_levels):  # a new transform is a fine-tuning target: say so
            self.origin["init_wct_levels"] = list(dec.wct_levels)
            print(f"impasto: --init {o.init} whitens {','.join(dec.wct_levels) or 'no level'}; fine-tuning it to "
                  f"--wct-levels {','.join(o.wct_levels) or '(none: AdaIN everywhere)'}", file=sys.stderr)
        dec.wct_levels = fresh.wct_levels
        have, wanted = decoder_meta(dec), decoder_meta(fresh)
        if have != wanted:
            raise InputError(f"--init {o.init} is a {have} decoder but the flags ask for {wanted}; give the "
                             "file's --arch/--slim/--skips/--skip-scale")
        if meta.get("backbone", "vgg16-keras-offline") != self.weights_name:
            raise InputError(f"--init {o.init} was trained against {meta.get('backbone')}, not --backbone {o.backbone}")
        return dec.train()

    def _forward(self, content: torch.Tensor, style: torch.Tensor, strength: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, dict[str, Any]]:
        dec = self.models["decoder"]
        with torch.no_grad():
            fc = self.encoder(content)
            fs = self.encoder(style)
            targets = {n: (wct if n in dec.wct_levels else adain)(fc[n], fs[n]) for n in dec.levels}
            if strength is not None:
                a = strength.view(-1, 1, 1, 1).to(targets[BOTTLENECK].dtype)
                targets = {n: a * t + (1 - a) * fc[n] for n, t in targets.items()}
        out = self.net("decoder")(targets)
        return out, {"t": targets[BOTTLENECK], "fs": fs, "fc": fc, "strength": strength}

    def _strengths(self, n: int) -> torch.Tensor | None:
        lo, hi = self.opts.strength_range
        if lo == hi == 1.0:
            return None
        return lo + (hi - lo) * torch.rand(n, generator=self.step_generator()).to(self.ctx.device)

    def loss(self, phase: str, batch: Any, cache: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        content, style = batch
        o = self.opts
        if phase == "decoder":
            out, aux = self._forward(content, style, self._strengths(content.shape[0]))
            fo = self.encoder(out)
            c_loss = batch_relative_error(fo[BOTTLENECK].float(), aux["t"].float())
            s_loss = style_stats_loss(fo, _style_targets(aux))
            total = o.content_weight * c_loss + o.style_weight * s_loss
            logs = {"content": float(c_loss.detach()), "style": float(s_loss.detach())}
            if o.gram_weight > 0:
                g_loss = gram_style_loss(fo, aux["fs"], aux["fc"], aux["strength"])
                total = total + o.gram_weight * g_loss
                logs["gram"] = float(g_loss.detach())
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
        o = self.opts
        sums = {"content": 0.0, "style": 0.0, **({"gram": 0.0} if o.gram_weight > 0 else {})}
        with torch.no_grad():
            for c, s in o.val_pairs:
                c, s = c.to(self.ctx.device), s.to(self.ctx.device)
                out, aux = self._forward(c, s)
                fo = self.encoder(out)
                sums["content"] += float(batch_relative_error(fo[BOTTLENECK].float(), aux["t"].float()))
                sums["style"] += float(style_stats_loss(fo, aux["fs"]))
                if "gram" in sums:
                    sums["gram"] += float(gram_style_loss(fo, aux["fs"], aux["fc"], None))
        val = {k: v / len(o.val_pairs) for k, v in sums.items()}
        val["total"] = (o.content_weight * val["content"] + o.style_weight * val["style"]
                        + o.gram_weight * val.get("gram", 0.0))
        if o.best_path is not None and (self.best is None or val["total"] < self.best):
            self.best = val["total"]
            self.export(o.best_path, self.step + 1, val)
        return val

    def extra_state(self) -> dict[str, Any]:
        return {"best": self.best, "origin": self.origin, "decoder": decoder_meta(self.models["decoder"])}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """A resume must train what the checkpoint trained: another --wct-levels (or architecture) would
        silently change the targets and compare its validation with the other's best."""
        saved, now = state.get("decoder"), decoder_meta(self.models["decoder"])
        if saved is not None and saved != now:
            raise InputError(f"--resume: the checkpoint trained a {saved} decoder but the flags describe {now}; "
                             "give the run's flags (e.g. its --wct-levels)")
        self.best = state.get("best")
        if "origin" in state:
            self.origin = state["origin"]

    def sample(self, step: int) -> Any:
        from impasto.sheet import grid

        cells = []
        for c, s in self.opts.val_pairs[:4]:
            out, _ = self._forward(c.to(self.ctx.device), s.to(self.ctx.device))
            cells += [c, s, out.clamp(0, 1).cpu()]
        return grid(cells, columns=3, cell=192) if cells else None

    def export(self, path: Path, step: int, val: dict[str, float] | None = None) -> None:
        o = self.opts
        dec = self.models["decoder"]
        save_decoder(path, dec, {  # type: ignore[arg-type]
            "backbone": self.weights_name, "steps": step, "style_weight": o.style_weight,
            "content_weight": o.content_weight, "adv_weight": o.adv_weight, "gram_weight": o.gram_weight, "lr": o.lr,
            "strength_range": list(o.strength_range), "encoder_layers": list(ENCODER_LAYERS), "data": o.data,
            **({"val": val} if val else {}), **self.origin,
            **({"total_steps": self.origin["init_steps"] + step} if self.origin else {})})


def _style_targets(aux: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Style statistics to match: the painting's, or at a strength below 1 the same interpolation of the
    photo's and the painting's per-channel mean and std that the decoder's input got (so 0.5 is not
    pulled to the full style by the loss)."""
    strength = aux["strength"]
    if strength is None:
        return aux["fs"]
    return {n: _blend_stats(aux["fc"].get(n), f, strength) for n, f in aux["fs"].items()}


def _blend_stats(content: torch.Tensor | None, style: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
    """A tensor whose per-channel mean and std are ``strength`` of the style's and the rest of the
    content's: the style's features renormalized (``mean_std`` reads the blend back)."""
    if content is None:
        return style
    a = strength.view(-1, 1, 1, 1).float()
    mc, sc = mean_std(content)
    ms, ss = mean_std(style)
    m, sd = a * ms + (1 - a) * mc, a * ss + (1 - a) * sc
    return ((style.float() - ms) / ss * sd + m).to(style.dtype)


def val_pairs(contents: list[torch.Tensor], styles: list[torch.Tensor], size: int
              ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    def fit(image: torch.Tensor) -> torch.Tensor:  # the decoder gives back multiples of 8
        small = resize_long(image, size)
        h, w = small.shape[-2:]
        return small[..., : h - h % 8, : w - w % 8]

    return [(fit(c), fit(styles[i % len(styles)])) for i, c in enumerate(contents)]
