"""Recipe: DCGAN on an image folder, from scratch or fine-tuned from a pretrained model (FreezeD).

Phase "D": non-saturating GAN loss on a real batch and a generated one (separate batches, as batch
norm in the paper sees them). Phase "G": the generator makes a new batch and is pushed towards "real".
Validation: set distances between generated and held-out images on pooled VGG relu5_3 features: the
kernel distance (KID, unbiased, the one to compare on small sets) and the Frechet distance (biased
upwards on small sets). Lower is better; comparable across runs on the same validation set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from impasto.errors import InputError
from impasto.models import files
from impasto.models.dcgan import KIND, Discriminator, Generator, generate
from impasto.train.augment import DiffAugment, check_same_recipe
from impasto.train.average import AVERAGE, LIVE, check_decay, in_use, start_average, step_average
from impasto.train.finetune import TransferRecipe, load_into, load_pretrained
from impasto.train.loop import Context

SAMPLE_SEED = 1234


@dataclass
class DCGANOptions:
    size: int = 64
    nz: int = 100
    ngf: int = 64
    ndf: int = 64
    lr: float = 2e-4
    finetune_from: str | None = None
    freeze_d: int = 0
    ema: float = 0.0  # decay of the generator's weight average (0: off); samples and the export use it
    augment: str = ""  # DiffAugment ops for the discriminator's inputs, e.g. "color,translation,cutout"
    val_images: list[torch.Tensor] = field(default_factory=list)
    data: str = ""  # what it was trained on (files, split, selection): the record and the model file


def set_distances(generated: torch.Tensor, held_out: list[torch.Tensor], size: int) -> dict[str, float]:
    """KID and Frechet distance of pooled VGG relu5_3 features, images upscaled to ``max(64, 2*size)``."""
    from impasto.metrics import frechet_distance, kernel_distance, set_features

    feat_size = max(64, 2 * size)
    a = set_features(list(generated.split(1)), size=feat_size)
    b = set_features(held_out, size=feat_size)
    return {"kid": kernel_distance(a, b), "fd": frechet_distance(a, b)}


class DCGANRecipe(TransferRecipe):
    opts: DCGANOptions

    def setup(self, ctx: Context) -> None:
        o = self.opts
        self.ctx = ctx
        g, d = Generator(o.size, o.nz, o.ngf), Discriminator(o.size, o.ndf)
        if o.finetune_from:
            states, _ = load_pretrained(o.finetune_from, KIND)
            if "G" not in states or "D" not in states:
                raise InputError(f"--finetune-from {o.finetune_from}: holds no DCGAN generator and discriminator")
            load_into(g, in_use(states), "generator")  # a checkpoint's average, as its file
            load_into(d, states["D"], "discriminator")
        try:
            self.frozen = d.freeze(o.freeze_d)
        except ValueError as exc:
            raise InputError(str(exc)) from exc
        self.augment = DiffAugment(o.augment)
        check_decay(o.ema)
        self.models = {"G": g.to(ctx.device), "D": d.to(ctx.device)}
        if o.ema:
            self.models[AVERAGE] = start_average(self.models[LIVE])
        betas = (0.5, 0.999)
        self.optimizers = {"D": torch.optim.Adam([p for p in d.parameters() if p.requires_grad], lr=o.lr, betas=betas),
                           "G": torch.optim.Adam(g.parameters(), lr=o.lr, betas=betas)}
        self.phases = {"D": ["D"], "G": ["G"]}
        self.fixed_z = torch.randn(64, o.nz, generator=torch.Generator().manual_seed(SAMPLE_SEED))

    def _z(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.opts.nz, generator=self.step_generator()).to(self.ctx.device)

    def _aug(self, x: torch.Tensor) -> torch.Tensor:
        return self.augment(x, self.step_generator())

    def _sampler(self) -> Generator:
        return in_use(self.models)  # type: ignore[return-value]

    def loss(self, phase: str, batch: Any, cache: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        real = batch
        n = real.shape[0]
        if phase == "D":
            with torch.no_grad():
                fake = self.models["G"](self._z(n))
            real_logit, fake_logit = self.net("D")(self._aug(real), self._aug(fake))
            loss = (F.binary_cross_entropy_with_logits(real_logit.float(), torch.ones(n, device=real.device))
                    + F.binary_cross_entropy_with_logits(fake_logit.float(), torch.zeros(n, device=real.device)))
            return loss, {"d": float(loss.detach()), "d_real": float(torch.sigmoid(real_logit.detach().float()).mean())}
        fake = self.net("G")(self._z(n))
        (logit,) = self.models["D"](self._aug(fake))
        loss = F.binary_cross_entropy_with_logits(logit.float(), torch.ones(n, device=real.device))
        return loss, {"g": float(loss.detach())}

    def _recipe(self) -> dict[str, Any]:
        """The small-folder settings: in the checkpoint (a resume must match) and the model file."""
        return {"ema": self.opts.ema, "diff_augment": self.augment.name}

    def extra_state(self) -> dict[str, Any]:
        return {"recipe": self._recipe()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        # a checkpoint written before the settings were recorded had neither
        check_same_recipe(state.get("recipe", {}), self._recipe(), {"ema": 0.0, "diff_augment": ""})

    def after_step(self) -> None:
        step_average(self.models, self.opts.ema, self.step)

    def validate(self) -> dict[str, float]:
        if len(self.opts.val_images) < 2:
            return {}
        n = max(len(self.opts.val_images), 64)
        z = torch.randn(n, self.opts.nz, generator=torch.Generator().manual_seed(SAMPLE_SEED + 1))
        fake = generate(self._sampler(), z.to(self.ctx.device))
        return set_distances(fake, self.opts.val_images, self.opts.size)

    def sample(self, step: int) -> Any:
        from impasto.sheet import grid

        fake = generate(self._sampler(), self.fixed_z.to(self.ctx.device))
        return grid(list(fake.split(1)), columns=8, cell=max(64, self.opts.size))

    def export(self, path: Path, step: int) -> None:
        o = self.opts
        shipped = {"G": self._sampler(), "D": self.models["D"]}  # the averaged generator when there is one
        files.save(path, KIND, files.flat(shipped), {
            "size": o.size, "nz": o.nz, "ngf": o.ngf, "ndf": o.ndf, "steps": step, "lr": o.lr,
            "finetuned_from": o.finetune_from, "freeze_d": o.freeze_d, **self._recipe(), "data": o.data})
