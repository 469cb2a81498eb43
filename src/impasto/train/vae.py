"""Recipe: convolutional VAE on an image folder, from scratch or fine-tuned (frozen encoder blocks).

Loss per image: summed squared error + beta_t * KL, with beta_t ramped linearly from 0 over
``kl_warmup`` steps (KL annealing, Bowman et al. 2016: the decoder learns to use z before the prior
pulls it in). Optional perceptual term: relative VGG relu2_2 feature error, scaled like the pixel
sum, for sharper reconstructions. Validation: held-out per-pixel MSE of decode(mu), KL and the
negative ELBO (beta 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from impasto.errors import InputError
from impasto.models import files
from impasto.models.vae import KIND, ConvVAE, kl_divergence, reconstruction_error
from impasto.train.finetune import TransferRecipe, load_into, load_pretrained
from impasto.train.loop import Context

PERCEPTUAL_LAYER = "relu2_2"


@dataclass
class VAEOptions:
    size: int = 64
    zdim: int = 128
    base: int = 32
    lr: float = 1e-3
    beta: float = 1.0
    kl_warmup: int = 500
    perceptual_weight: float = 0.0
    finetune_from: str | None = None
    freeze_encoder: int = 0
    val_kid: bool = False  # also KID/FD of samples vs the held-out images (comparable with the DCGAN)
    val_images: list[torch.Tensor] = field(default_factory=list)
    data: str = ""  # what it was trained on (files, split, selection): the record and the model file


class VAERecipe(TransferRecipe):
    opts: VAEOptions

    def setup(self, ctx: Context) -> None:
        o = self.opts
        self.ctx = ctx
        vae = ConvVAE(o.size, o.zdim, o.base)
        if o.finetune_from:
            states, _ = load_pretrained(o.finetune_from, KIND)
            if "vae" not in states:
                raise InputError(f"--finetune-from {o.finetune_from}: holds no VAE")
            load_into(vae, states["vae"], "VAE")
        try:
            self.frozen = vae.freeze_encoder(o.freeze_encoder)
        except ValueError as exc:
            raise InputError(str(exc)) from exc
        self.models = {"vae": vae.to(ctx.device)}
        self.optimizers = {"vae": torch.optim.Adam([p for p in vae.parameters() if p.requires_grad], lr=o.lr)}
        self.phases = {"vae": ["vae"]}
        self.encoder = None
        if o.perceptual_weight > 0:
            from impasto.features import Encoder, resolve_weights

            self.encoder = Encoder([PERCEPTUAL_LAYER], resolve_weights(None, None)).to(ctx.device)

    def beta(self) -> float:
        o = self.opts
        return o.beta if o.kl_warmup <= 0 else o.beta * min(1.0, (self.step + 1) / o.kl_warmup)

    def _perceptual(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        assert self.encoder is not None
        fa, fb = self.encoder(x_hat)[PERCEPTUAL_LAYER].float(), self.encoder(x)[PERCEPTUAL_LAYER].float()
        rel = (fa - fb).pow(2).flatten(1).mean(1) / (fb.pow(2).flatten(1).mean(1) + 1e-8)
        return rel.mean() * x[0].numel()

    def loss(self, phase: str, batch: Any, cache: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        x = batch
        x_hat, mu, logvar = self.net("vae")(x, generator=self.step_generator())
        rec, kl = reconstruction_error(x_hat, x), kl_divergence(mu, logvar)
        beta = self.beta()
        total = rec + beta * kl
        logs = {"recon": float(rec.detach()), "kl": float(kl.detach()), "beta": beta}
        if self.encoder is not None:
            perc = self._perceptual(x_hat, x)
            total = total + self.opts.perceptual_weight * perc
            logs["perceptual"] = float(perc.detach())
        logs["loss"] = float(total.detach())
        return total, logs

    def validate(self) -> dict[str, float]:
        if not self.opts.val_images:
            return {}
        vae: ConvVAE = self.models["vae"]  # type: ignore[assignment]
        x = torch.cat(self.opts.val_images).to(self.ctx.device)
        mu, logvar = vae.encode(x)
        mse = float((vae.decode(mu) - x).pow(2).mean())
        x_hat, mu, logvar = vae(x, generator=torch.Generator().manual_seed(0))
        rec, kl = float(reconstruction_error(x_hat, x)), float(kl_divergence(mu, logvar))
        out = {"mse": mse, "kl": kl, "neg_elbo": rec + kl}
        if self.opts.val_kid and len(self.opts.val_images) >= 2:
            from impasto.train.dcgan import SAMPLE_SEED, set_distances

            n = max(len(self.opts.val_images), 64)
            z = torch.randn(n, self.opts.zdim, generator=torch.Generator().manual_seed(SAMPLE_SEED + 1))
            samples = torch.cat([vae.decode(zs.to(self.ctx.device)).float().cpu() for zs in z.split(64)])
            out.update(set_distances(samples, self.opts.val_images, self.opts.size))
        return out

    def sample(self, step: int) -> Any:
        from impasto.sheet import grid

        vae: ConvVAE = self.models["vae"]  # type: ignore[assignment]
        cells: list[torch.Tensor] = []
        if self.opts.val_images:
            x = torch.cat(self.opts.val_images[:8]).to(self.ctx.device)
            cells += [*x.cpu().split(1), *vae.decode(vae.encode(x)[0]).float().cpu().split(1)]
        z = torch.randn(32, self.opts.zdim, generator=torch.Generator().manual_seed(1234)).to(self.ctx.device)
        cells += list(vae.decode(z).float().cpu().split(1))
        return grid(cells, columns=8, cell=max(64, self.opts.size))

    def export(self, path: Path, step: int) -> None:
        o = self.opts
        files.save(path, KIND, files.flat(self.models), {
            "size": o.size, "zdim": o.zdim, "base": o.base, "steps": step, "lr": o.lr, "beta": o.beta,
            "kl_warmup": o.kl_warmup, "perceptual_weight": o.perceptual_weight, "finetuned_from": o.finetune_from,
            "freeze_encoder": o.freeze_encoder, "data": o.data})
