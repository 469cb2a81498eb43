"""Recipe: CycleGAN between two unpaired image collections, on the shared training loop.

Phase "G" trains both generators: LSGAN adversarial terms, L1 cycle consistency (A->B->A and
B->A->B), L1 identity (G_ab(b) ~ b) and, optionally, a perceptual cycle term on VGG features (the
shared pretrained encoder). Phase "D" trains both discriminators on real images vs fakes drawn from a
history pool. Learning rates stay constant, then decay linearly to zero (``decay_from`` of the run).
With ``ema``, a weight average of both generators (``impasto.train.average``) is what validation, the
sample grids and the model file use.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from impasto.models import files
from impasto.models.cyclegan import KIND, CycleGenerators, ImagePool, PatchDiscriminator, lsgan
from impasto.train.augment import DiffAugment, check_same_recipe
from impasto.train.average import AVERAGE, LIVE, check_decay, in_use, start_average, step_average
from impasto.train.data import sample_generator
from impasto.train.loop import Context, Recipe

PERCEPTUAL_LAYERS = ("relu2_2", "relu3_3")


class Unpaired(Dataset):
    """(a, b): every image of the larger folder once per epoch, its partner drawn at random."""

    def __init__(self, a: Dataset, b: Dataset, seed: int = 0) -> None:
        self.a, self.b, self.seed, self.epoch = a, b, seed, 0

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        for ds in (self.a, self.b):
            if hasattr(ds, "epoch"):
                ds.epoch = self.epoch  # type: ignore[attr-defined]
        gen = sample_generator(self.seed + 11, self.epoch, index)
        big, small = (self.a, self.b) if len(self.a) >= len(self.b) else (self.b, self.a)  # type: ignore[arg-type]
        j = int(torch.randint(0, len(small), (1,), generator=gen))  # type: ignore[arg-type]
        x, y = big[index], small[j]
        return (x, y) if big is self.a else (y, x)


@dataclass
class CycleOptions:
    ngf: int = 64
    n_blocks: int = 9
    upsample: str = "nearest"  # the generators' resize before each upsampling convolution
    cycle_weight: float = 10.0
    identity_weight: float = 0.5  # relative to cycle_weight, as in the paper
    perceptual_weight: float = 0.0
    lr: float = 2e-4
    pool: int = 50
    decay_from: float = 0.5
    steps: int = 1000
    size: int = 256
    backbone: str | None = None
    augment: str = ""  # DiffAugment ops for the discriminators' inputs (real and generated), e.g. "translation"
    ema: float = 0.0  # decay of both generators' weight average (0: off); validation, samples and export use it
    val_a: list[torch.Tensor] = field(default_factory=list)
    val_b: list[torch.Tensor] = field(default_factory=list)
    names: tuple[str, str] = ("A", "B")
    data: str = ""  # what it was trained on (files, split, selection): the record and the model file


def linear_decay(steps: int, decay_from: float) -> Any:
    """LR factor: 1 until ``decay_from * steps``, then linearly to 0 at the last step."""
    start = int(steps * decay_from)

    def factor(step: int) -> float:
        return 1.0 if step < start else max(0.0, 1.0 - (step - start) / max(1, steps - start))

    return factor


class CycleGANRecipe(Recipe):
    def __init__(self, opts: CycleOptions) -> None:
        super().__init__()
        self.opts = opts

    def setup(self, ctx: Context) -> None:
        o = self.opts
        self.ctx = ctx
        gens = CycleGenerators(o.ngf, o.n_blocks, o.upsample)
        d_a, d_b = PatchDiscriminator(), PatchDiscriminator()
        self.models = {n: m.to(ctx.device) for n, m in (("G", gens), ("D_a", d_a), ("D_b", d_b))}
        check_decay(o.ema)
        if o.ema:
            self.models[AVERAGE] = start_average(self.models[LIVE])
        betas = (0.5, 0.999)
        self.optimizers = {
            "G": torch.optim.Adam(gens.parameters(), lr=o.lr, betas=betas),
            "D": torch.optim.Adam(itertools.chain(d_a.parameters(), d_b.parameters()), lr=o.lr, betas=betas)}
        self.phases = {"G": ["G"], "D": ["D_a", "D_b"]}
        decay = linear_decay(o.steps, o.decay_from)
        self.schedulers = {k: torch.optim.lr_scheduler.LambdaLR(v, decay) for k, v in self.optimizers.items()}
        self.pools = {"A": ImagePool(o.pool, seed=1), "B": ImagePool(o.pool, seed=2)}
        self.augment = DiffAugment(o.augment)
        self.encoder = None
        self.weights_name = None
        if o.perceptual_weight > 0:
            from impasto.features import Encoder, resolve_weights

            weights = resolve_weights(o.backbone, None)
            self.weights_name = weights.entry.name
            self.encoder = Encoder(PERCEPTUAL_LAYERS, weights).to(ctx.device)

    def _perceptual(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        assert self.encoder is not None
        fx, fy = self.encoder(x), self.encoder(y.detach())
        return sum((F.mse_loss(fx[n].float(), fy[n].float()) / (fy[n].float().pow(2).mean() + 1e-8)
                    for n in PERCEPTUAL_LAYERS), torch.zeros((), device=x.device)) / len(PERCEPTUAL_LAYERS)

    def _aug(self, x: torch.Tensor) -> torch.Tensor:
        """The discriminators see real and generated images through the same random augmentation
        (independent draws); cycle and identity terms see them unaugmented."""
        return self.augment(x, self.step_generator())

    def loss(self, phase: str, batch: Any, cache: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        a, b = batch
        o = self.opts
        if phase == "G":
            r = self.net("G")(a, b, identity=o.identity_weight > 0)
            fake_a, fake_b, rec_a, rec_b = r["fake_a"], r["fake_b"], r["rec_a"], r["rec_b"]
            d_a, d_b = self.models["D_a"], self.models["D_b"]
            adv = lsgan(d_b(self._aug(fake_b)), True) + lsgan(d_a(self._aug(fake_a)), True)
            cycle = F.l1_loss(rec_a.float(), a) + F.l1_loss(rec_b.float(), b)
            total = adv + o.cycle_weight * cycle
            logs = {"adv_g": float(adv.detach()), "cycle": float(cycle.detach())}
            if o.identity_weight > 0:
                idt = F.l1_loss(r["idt_a"].float(), a) + F.l1_loss(r["idt_b"].float(), b)
                total = total + o.cycle_weight * o.identity_weight * idt
                logs["identity"] = float(idt.detach())
            if self.encoder is not None:
                perc = self._perceptual(rec_a, a) + self._perceptual(rec_b, b)
                total = total + o.perceptual_weight * perc
                logs["perceptual"] = float(perc.detach())
            cache["fake_a"], cache["fake_b"] = fake_a.detach().float(), fake_b.detach().float()
            logs["total_g"] = float(total.detach())
            return total, logs
        n = a.shape[0]
        pa, pb = self.pools["A"].query(cache["fake_a"]), self.pools["B"].query(cache["fake_b"])
        real_a, fake_a = self.net("D_a")(torch.cat([self._aug(a), self._aug(pa.to(a.dtype))])).split(n)  # one forward
        real_b, fake_b = self.net("D_b")(torch.cat([self._aug(b), self._aug(pb.to(b.dtype))])).split(n)  # each (DDP)
        loss_a = 0.5 * (lsgan(real_a, True) + lsgan(fake_a, False))
        loss_b = 0.5 * (lsgan(real_b, True) + lsgan(fake_b, False))
        return loss_a + loss_b, {"d_a": float(loss_a.detach()), "d_b": float(loss_b.detach())}

    def _generators(self) -> CycleGenerators:
        """What validation, samples and the model file use: the average when there is one."""
        return in_use(self.models)  # type: ignore[return-value]

    def after_step(self) -> None:
        step_average(self.models, self.opts.ema, self.step)

    def validate(self) -> dict[str, float]:
        """Held-out cycle and identity L1 per direction (lower is better; adversarial terms are not
        comparable across steps, these are)."""
        out: dict[str, float] = {}
        g = self._generators()
        for name, images, there, back in (("a", self.opts.val_a, g.g_ab, g.g_ba),
                                          ("b", self.opts.val_b, g.g_ba, g.g_ab)):
            if not images:
                continue
            cyc = idt = 0.0
            for img in images:
                x = img.to(self.ctx.device)
                cyc += float(F.l1_loss(back(there(x)), x))
                idt += float(F.l1_loss(back(x), x))
            out[f"cycle_{name}"], out[f"identity_{name}"] = cyc / len(images), idt / len(images)
        return out

    def sample(self, step: int) -> Any:
        from impasto.sheet import grid

        g = self._generators()
        cells: list[torch.Tensor] = []
        for images, there, back in ((self.opts.val_a, g.g_ab, g.g_ba), (self.opts.val_b, g.g_ba, g.g_ab)):
            for img in images[:3]:
                y = there(img.to(self.ctx.device))
                cells += [img, y.clamp(0, 1).cpu(), back(y).clamp(0, 1).cpu()]
        return grid(cells, columns=3, cell=160) if cells else None

    def _recipe(self) -> dict[str, Any]:
        """The settings a resume must match (in the checkpoint and the model file)."""
        return {"diff_augment": self.augment.name, "ema": self.opts.ema, "upsample": self.opts.upsample}

    def extra_state(self) -> dict[str, Any]:
        return {"pools": {k: p.state_dict() for k, p in self.pools.items()}, "recipe": self._recipe()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        # a checkpoint written before a setting was recorded ran without it
        check_same_recipe(state.get("recipe", {}), self._recipe(), {"diff_augment": "", "ema": 0.0,
                                                                     "upsample": "nearest"})
        for k, p in state.get("pools", {}).items():
            self.pools[k].load_state_dict(p)

    def export(self, path: Path, step: int) -> None:
        o = self.opts
        files.save(path, KIND, self._generators().state_dict(), {
            "ngf": o.ngf, "n_blocks": o.n_blocks, "steps": step, "size": o.size, "names": list(o.names),
            "cycle_weight": o.cycle_weight, "identity_weight": o.identity_weight,
            "perceptual_weight": o.perceptual_weight, "perceptual_backbone": self.weights_name, "lr": o.lr,
            **self._recipe(), "data": o.data})
