"""CycleGAN (Zhu et al. 2017): two ResNet generators and two PatchGAN discriminators, trained on
unpaired collections A and B with LSGAN, cycle-consistency and identity losses.

Generators take and return images in [0, 1] (internally [-1, 1] with a tanh output as in the paper).
Upsampling is resize + convolution rather than transposed convolution, so no checkerboard. The
resize is ``nearest`` (files without the key) or ``bilinear``; the file's metadata says which.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from impasto.errors import ModelFileError
from impasto.models import files
from impasto.models.padding import ReflectPad
from impasto.models.patchgan import PatchDiscriminator

__all__ = ["UPSAMPLE_MODES", "CycleGenerators", "ImagePool", "PatchDiscriminator", "ResnetGenerator", "lsgan"]

UPSAMPLE_MODES = ("nearest", "bilinear")


def _conv_in_relu(cin: int, cout: int, k: int, stride: int = 1, *, relu: bool = True) -> list[nn.Module]:
    pad: list[nn.Module] = [ReflectPad(k // 2)] if stride == 1 else []
    layers = [*pad, nn.Conv2d(cin, cout, k, stride, 0 if stride == 1 else k // 2), nn.InstanceNorm2d(cout)]
    return [*layers, nn.ReLU(inplace=True)] if relu else layers


class ResBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*_conv_in_relu(channels, channels, 3), *_conv_in_relu(channels, channels, 3,
                                                                                        relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """c7s1-ngf, two stride-2 downsamplings, ``n_blocks`` residual blocks, two upsamplings, c7s1-3.

    ``ngf=64, n_blocks=9`` is the paper's 256 px generator; smaller values train in minutes on a CPU.
    ``upsample`` is the resize before each upsampling convolution (one of ``UPSAMPLE_MODES``)."""

    def __init__(self, ngf: int = 64, n_blocks: int = 9, upsample: str = "nearest") -> None:
        super().__init__()
        if upsample not in UPSAMPLE_MODES:
            raise ValueError(f"upsample must be one of {UPSAMPLE_MODES}, got {upsample!r}")
        self.ngf, self.n_blocks, self.upsample = ngf, n_blocks, upsample
        resize = {"mode": upsample} if upsample == "nearest" else {"mode": upsample, "align_corners": False}
        layers: list[nn.Module] = [*_conv_in_relu(3, ngf, 7), *_conv_in_relu(ngf, 2 * ngf, 3, 2),
                                   *_conv_in_relu(2 * ngf, 4 * ngf, 3, 2)]
        layers += [ResBlock(4 * ngf) for _ in range(n_blocks)]
        for cin, cout in ((4 * ngf, 2 * ngf), (2 * ngf, ngf)):
            layers += [nn.Upsample(scale_factor=2, **resize), *_conv_in_relu(cin, cout, 3)]
        layers += [ReflectPad(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (4 - h % 4) % 4, (4 - w % 4) % 4  # the two stride-2 stages invert exactly
        y = self.net(F.pad(x * 2 - 1, (0, pw, 0, ph), mode="reflect"))
        return (y[..., :h, :w] + 1) / 2


class CycleGenerators(nn.Module):
    """Both generators as one module, so one forward call does the whole cycle (DDP needs a single
    forward per backward, and the pair is saved and loaded together)."""

    def __init__(self, ngf: int = 64, n_blocks: int = 9, upsample: str = "nearest") -> None:
        super().__init__()
        self.g_ab, self.g_ba = ResnetGenerator(ngf, n_blocks, upsample), ResnetGenerator(ngf, n_blocks, upsample)

    def forward(self, a: torch.Tensor, b: torch.Tensor, identity: bool = True) -> dict[str, torch.Tensor]:
        n = a.shape[0]
        if identity:  # G_ab sees a (translate) and b (identity) in one batch; likewise G_ba
            fb, ib = self.g_ab(torch.cat([a, b])).split(n)
            fa, ia = self.g_ba(torch.cat([b, a])).split(n)
        else:
            fb, fa = self.g_ab(a), self.g_ba(b)
        out = {"fake_b": fb, "fake_a": fa, "rec_a": self.g_ba(fb), "rec_b": self.g_ab(fa)}
        if identity:
            out["idt_a"], out["idt_b"] = ia, ib
        return out


def lsgan(scores: torch.Tensor, real: bool) -> torch.Tensor:
    """Least-squares GAN loss (Mao et al.): mean (D(x) - 1)^2 for real targets, D(x)^2 for fake."""
    s = scores.float()
    return (s - 1).pow(2).mean() if real else s.pow(2).mean()


class ImagePool:
    """History of generated images (Shrivastava et al.): the discriminator sees a mix of the newest
    fakes and older ones, which damps oscillation. Its own generator makes resume exact."""

    def __init__(self, size: int = 50, seed: int = 0) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []
        self.gen = torch.Generator().manual_seed(seed)

    def query(self, batch: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return batch
        out = []
        for img in batch.detach():
            if len(self.images) < self.size:
                self.images.append(img.cpu().clone())
                out.append(img)
            elif float(torch.rand((), generator=self.gen)) < 0.5:
                j = int(torch.randint(0, self.size, (), generator=self.gen))
                out.append(self.images[j].to(img.device, img.dtype))
                self.images[j] = img.cpu().clone()
            else:
                out.append(img)
        return torch.stack(out)

    def state_dict(self) -> dict[str, Any]:
        return {"size": self.size, "images": [i.clone() for i in self.images], "gen": self.gen.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.size = int(state["size"])
        self.images = [i.clone() for i in state["images"]]
        self.gen.set_state(state["gen"])


KIND = "cyclegan"


def load_generators(path: str | Path) -> tuple[dict[str, ResnetGenerator], dict[str, Any]]:
    """{"a2b": G_ab, "b2a": G_ba} in eval mode, and the model's metadata."""
    tensors, meta = files.load(path, KIND)
    ngf = files.meta_int(meta, "ngf", 1, 1024, where=path)
    blocks = files.meta_int(meta, "n_blocks", 0, 100, where=path)
    names = meta.get("names", ["A", "B"])
    if not isinstance(names, list) or len(names) != 2 or not all(isinstance(n, str) for n in names):
        raise ModelFileError(f"{path}: metadata 'names' must be two collection names, got {files.short(names)}")
    meta["names"] = [n[:60] for n in names]
    upsample = meta.get("upsample", "nearest")  # files before the key was written used nearest
    if upsample not in UPSAMPLE_MODES:
        raise ModelFileError(f"{path}: metadata 'upsample' must be one of {UPSAMPLE_MODES}, "
                             f"got {files.short(upsample)}")
    gens = files.build_checked(path, lambda: CycleGenerators(ngf, blocks, upsample), tensors, "CycleGAN generators")
    gens.eval()
    return {"a2b": gens.g_ab, "b2a": gens.g_ba}, meta
