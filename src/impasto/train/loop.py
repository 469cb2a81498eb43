"""The one training loop every trainer uses: DDP under torchrun, resumable sampling, gradient
accumulation, mixed precision, rank-0 logging/plots/samples/checkpoints, exact resume.

A trainer is a :class:`Recipe`: it owns its modules and optimizers and says, for each *phase* (one
optimizer step, e.g. "G" then "D" for a GAN), how to compute the loss of one micro-batch. The loop
does everything else, so fast-style, AdaIN, CycleGAN, DCGAN and VAE share one tested mechanism.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from impasto.device import autocast, pick_device, pick_dtype, precision_name
from impasto.errors import InputError, ModelFileError
from impasto.progress import Progress
from impasto.train import checkpoint as ckpt


@dataclass
class TrainConfig:
    run_dir: Path
    steps: int
    batch: int = 4  # global batch: the same numbers single- or multi-process
    grad_accum: int = 1
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    save_every: int = 100
    keep: int = 3
    log_every: int = 10
    sample_every: int = 0  # 0: at every save
    resume: bool = False
    num_workers: int = 0


@dataclass
class Context:
    device: torch.device
    dtype: torch.dtype | None
    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


class Recipe:
    """Base for trainers. Subclasses fill ``models``, ``optimizers`` and ``phases`` in ``setup``."""

    models: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    phases: dict[str, list[str]]  # phase name -> the models its optimizer trains
    schedulers: dict[str, Any]

    def __init__(self) -> None:
        self.models, self.optimizers, self.phases, self.schedulers = {}, {}, {}, {}
        self._wrapped: dict[str, nn.Module] = {}
        self._phase: str | None = None
        self.step = 0  # optimizer steps completed; the loop sets it before each step
        self.seed, self.rank = 0, 0
        self._noise: tuple[int, torch.Generator] | None = None

    def setup(self, ctx: Context) -> None:
        raise NotImplementedError

    def loss(self, phase: str, batch: Any, cache: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss of one micro-batch for ``phase``; ``cache`` carries tensors between phases."""
        raise NotImplementedError

    def net(self, name: str) -> nn.Module:
        """The DDP wrapper while its phase trains it (so gradients sync), else the plain module."""
        if self._phase is not None and name in self.phases[self._phase]:
            return self._wrapped.get(name, self.models[name])
        return self.models[name]

    def step_generator(self) -> torch.Generator:
        """Noise for this step (latent codes, VAE sampling): seeded by (seed, rank, step), so ranks
        draw different noise and a resumed run draws exactly what the uninterrupted one would."""
        if self._noise is None or self._noise[0] != self.step:
            from impasto.train.data import sample_generator

            self._noise = (self.step, sample_generator(self.seed + 101, self.rank, self.step))
        return self._noise[1]

    def after_step(self) -> None:
        """Once after each optimizer step, every phase done (e.g. a weight average's update)."""
        return None

    def validate(self) -> dict[str, float]:
        return {}

    def sample(self, step: int) -> Any:  # a PIL image or None
        return None

    def summary(self) -> dict[str, Any]:
        """Facts about the run for its JSON record (e.g. which parameters were frozen)."""
        return {}

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        return None

    def export(self, path: Path, step: int) -> None:
        """Write the final, shippable model (rank 0 only)."""
        raise NotImplementedError


class ResumableSampler(DistributedSampler):
    """DistributedSampler that can start mid-epoch (``start`` samples in, on this rank)."""

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, seed: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True)
        self.start = 0

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        return iter(indices[self.start:])

    def __len__(self) -> int:
        return self.num_samples - self.start


def init_distributed(device_name: str) -> tuple[int, int]:
    """Join the process group when launched by torchrun (gloo on CPU, nccl on CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        use_cuda = torch.cuda.is_available() and device_name != "cpu"
        if use_cuda:
            local = int(os.environ.get("LOCAL_RANK", "0"))
            if local >= torch.cuda.device_count():
                raise InputError(f"process {local} of this node has no GPU ({torch.cuda.device_count()} visible): "
                                 "start at most one process per GPU, or pass --device cpu")
            torch.cuda.set_device(local)
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _device_for(name: str, world: int) -> torch.device:
    dev = pick_device(name)
    if dev.type == "cuda" and world > 1:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return dev


@dataclass
class TrainResult:
    steps: int
    seconds: float
    last_losses: dict[str, float]
    validation: dict[str, float] = field(default_factory=dict)
    resumed_from: int | None = None
    world: int = 1
    precision: str = "fp32"
    checkpoint: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _move_batch(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, list | tuple):
        return type(batch)(_move_batch(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _move_batch(v, device) for k, v in batch.items()}
    return batch


def train(recipe: Recipe, dataset: Dataset, cfg: TrainConfig, *, out: Path | None = None,
          callback: Callable[[Progress], Any] | None = None) -> TrainResult:
    """Run (or resume) ``recipe`` on ``dataset`` for ``cfg.steps`` optimizer steps."""
    rank, world = init_distributed(cfg.device)
    device = _device_for(cfg.device, world)
    dtype = pick_dtype(device, cfg.precision)
    ctx = Context(device, dtype, rank, world)
    per_step = _per_step(cfg, world, dataset)
    ckpt_dir = cfg.run_dir / "checkpoints"
    existing = ckpt.latest(ckpt_dir)
    if existing is not None and not cfg.resume:
        raise InputError(f"{cfg.run_dir} already holds checkpoints; pass --resume to continue or use another --out")

    scalers = _setup(recipe, cfg, ctx)
    step, epoch, consumed = 0, 0, 0
    resumed_from = None
    if cfg.resume and existing is not None:
        step, epoch, consumed = _resume_newest(recipe, scalers, ckpt_dir, ctx.is_main)
        resumed_from = step
    if ctx.is_main:
        cfg.run_dir.mkdir(parents=True, exist_ok=True)
        _truncate_log(cfg.run_dir / "log.jsonl", step)

    sampler = ResumableSampler(dataset, world, rank, cfg.seed)
    t0 = time.perf_counter()
    last: dict[str, float] = {}
    val: dict[str, float] = {}
    saved: Path | None = None
    batches = _batches(dataset, sampler, per_step, cfg.num_workers, epoch, consumed)
    while step < cfg.steps:
        recipe.step = step
        micro = []
        for _ in range(cfg.grad_accum):
            batch, epoch, consumed = next(batches)
            micro.append(_move_batch(batch, device))
        sums = _optimizer_step(recipe, micro, scalers, ctx)
        for sched in recipe.schedulers.values():
            sched.step()
        step += 1
        if not all(math.isfinite(v) for v in sums.values()):
            raise InputError(f"training diverged at step {step} (non-finite loss {sums}); lower the learning rate")
        if step % cfg.log_every == 0 or step == cfg.steps or step == 1:
            last = _all_reduce_mean(sums, ctx)
            if ctx.is_main:
                _append_log(cfg.run_dir / "log.jsonl", {"step": step, "time": time.perf_counter() - t0, **last})
        if callback is not None and ctx.is_main:
            callback(Progress("train", step, cfg.steps, last or sums, time.perf_counter() - t0))
        if step % cfg.save_every == 0 or step == cfg.steps:
            if ctx.is_main:
                val = _evaluate(recipe, step, cfg)
                saved = ckpt.save(ckpt_dir, step, _state(recipe, scalers, step, epoch, consumed, world), cfg.keep)
                plot_losses(cfg.run_dir / "log.jsonl", cfg.run_dir / "loss.png")
            _barrier(world)  # nobody races ahead of a checkpoint being written
        elif ctx.is_main and cfg.sample_every and step % cfg.sample_every == 0:
            _save_sample(recipe, step, cfg)
    if ctx.is_main and out is not None:
        recipe.export(out, step)
    _barrier(world)
    return TrainResult(step, time.perf_counter() - t0, last, val, resumed_from, world, precision_name(dtype),
                       str(saved) if saved else None)


def _setup(recipe: Recipe, cfg: TrainConfig, ctx: Context) -> dict[str, Any]:
    """Seed, build the recipe's modules (DDP-wrapped under torchrun); returns a grad scaler per phase."""
    torch.manual_seed(cfg.seed)
    recipe.seed, recipe.rank = cfg.seed, ctx.rank
    recipe.setup(ctx)
    _wrap_for_ddp(recipe, ctx)
    return {p: torch.amp.GradScaler("cuda", enabled=ctx.dtype == torch.float16) for p in recipe.phases}


def _barrier(world: int) -> None:
    if world > 1:
        dist.barrier()


def _per_step(cfg: TrainConfig, world: int, dataset: Dataset) -> int:
    """Samples each process loads per micro-batch; the global batch must split evenly."""
    per_step = cfg.batch // (world * cfg.grad_accum)
    if per_step < 1 or per_step * world * cfg.grad_accum != cfg.batch:
        raise InputError(f"--batch {cfg.batch} must be a multiple of processes ({world}) x accumulation "
                         f"({cfg.grad_accum})")
    if len(dataset) < cfg.batch:  # type: ignore[arg-type]
        raise InputError(f"the training set has {len(dataset)} images, fewer than one batch ({cfg.batch})")  # type: ignore[arg-type]
    return per_step


def _wrap_for_ddp(recipe: Recipe, ctx: Context) -> None:
    """Under torchrun every trained module gets a DDP wrapper (SyncBatchNorm on CUDA)."""
    if ctx.world <= 1:
        return
    cuda = ctx.device.type == "cuda"
    for group in recipe.phases.values():
        for name in group:
            module = recipe.models[name]
            module = nn.SyncBatchNorm.convert_sync_batchnorm(module) if cuda else module
            recipe._wrapped[name] = DDP(module, device_ids=[ctx.device.index] if cuda else None)


def _resume_newest(recipe: Recipe, scalers: dict[str, Any], folder: Path, is_main: bool) -> tuple[int, int, int]:
    """Resume from the newest checkpoint that loads and fits: a damaged newer one (a disk that filled,
    a failed copy) is named on stderr and passed over, so one bad file does not cost the whole run;
    when none is intact, one line."""
    damaged: list[str] = []
    for path in reversed(ckpt.checkpoint_paths(folder)):
        try:
            position = _resume(recipe, scalers, path)
        except ModelFileError as exc:
            damaged.append(f"{path.name}: {str(exc).removeprefix(f'{path}: ')[:120]}")
            continue
        if damaged and is_main:
            print(f"impasto: warning: resuming from {path.name}, the newest intact checkpoint; passed over "
                  + "; ".join(damaged), file=sys.stderr)
        return position
    raise ModelFileError(f"{folder}: no intact checkpoint to resume from ({'; '.join(damaged)[:300]}); "
                         "use another --out to start over")


def _resume(recipe: Recipe, scalers: dict[str, Any], path: Path) -> tuple[int, int, int]:
    """Models, optimizers, schedulers, scalers, the recipe's own state and the RNGs from a checkpoint;
    returns (step, epoch, samples consumed in that epoch)."""
    state = ckpt.load(path)
    try:
        recipe.load_extra_state(state.get("extra", {}))  # first: a recipe mismatch is named, not a missing model
        for name, m in recipe.models.items():
            m.load_state_dict(state["models"][name])
        for name, o in recipe.optimizers.items():
            o.load_state_dict(state["optimizers"][name])
        for name, s in recipe.schedulers.items():
            s.load_state_dict(state["schedulers"][name])
        for name, sc in scalers.items():
            if name in state.get("scalers", {}):
                sc.load_state_dict(state["scalers"][name])
        ckpt.set_rng_state(state["rng"])
        return int(state["step"]), int(state["epoch"]), int(state["consumed"])
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as exc:  # another run's, or damaged inside
        first = str(exc).splitlines()[0][:100] if str(exc) else ""
        raise ModelFileError(f"{path}: does not fit this run ({type(exc).__name__} {first})") from exc


def _optimizer_step(recipe: Recipe, micro: list[Any], scalers: dict[str, Any], ctx: Context) -> dict[str, float]:
    """One optimizer step of every phase over the micro-batches (gradients synced on the last one), then
    the recipe's ``after_step``; returns the losses averaged over the micro-batches."""
    sums: dict[str, float] = {}
    caches: list[dict[str, Any]] = [{} for _ in micro]
    for phase, names in recipe.phases.items():
        recipe._phase = phase
        opt = recipe.optimizers[phase]
        opt.zero_grad(set_to_none=True)
        for k, (mb, cache) in enumerate(zip(micro, caches, strict=True)):
            with contextlib.ExitStack() as stack:
                if k < len(micro) - 1:  # accumulate without syncing until the last micro-batch
                    for n in names:
                        if n in recipe._wrapped:
                            stack.enter_context(recipe._wrapped[n].no_sync())  # type: ignore[operator]
                with autocast(ctx.device, ctx.dtype):
                    loss, logs = recipe.loss(phase, mb, cache)
                scalers[phase].scale(loss.float() / len(micro)).backward()
            for key, v in logs.items():
                sums[key] = sums.get(key, 0.0) + v / len(micro)
        scalers[phase].step(opt)
        scalers[phase].update()
        recipe._phase = None
    recipe.after_step()
    return sums


def _batches(dataset: Dataset, sampler: ResumableSampler, per_step: int, workers: int, epoch: int,
             consumed: int) -> Iterator[tuple[Any, int, int]]:
    """Yield (batch, epoch, samples consumed this epoch after it), forever, resuming mid-epoch."""
    while True:
        sampler.set_epoch(epoch)
        sampler.start = consumed
        if hasattr(dataset, "epoch"):
            dataset.epoch = epoch  # type: ignore[attr-defined]
        loader = DataLoader(dataset, batch_size=per_step, sampler=sampler, num_workers=workers, drop_last=True)
        for batch in loader:
            consumed += per_step
            yield batch, epoch, consumed
        epoch, consumed = epoch + 1, 0


def _state(recipe: Recipe, scalers: dict[str, Any], step: int, epoch: int, consumed: int, world: int
           ) -> dict[str, Any]:
    """Everything needed to continue exactly. Ranks share one seed and run the same ops, so rank 0's
    RNG state stands for all (augmentation does not use the global RNG: see train.data)."""
    return {
        "models": {n: m.state_dict() for n, m in recipe.models.items()},
        "optimizers": {n: o.state_dict() for n, o in recipe.optimizers.items()},
        "schedulers": {n: s.state_dict() for n, s in recipe.schedulers.items()},
        "scalers": {n: s.state_dict() for n, s in scalers.items()},
        "extra": recipe.extra_state(),
        "rng": ckpt.rng_state(), "step": step, "epoch": epoch, "consumed": consumed, "world": world,
    }


def _evaluate(recipe: Recipe, step: int, cfg: TrainConfig) -> dict[str, float]:
    for m in recipe.models.values():
        m.eval()
    try:
        with torch.no_grad():
            val = recipe.validate()
        _save_sample(recipe, step, cfg)
    finally:
        for m in recipe.models.values():
            m.train()
    if val:
        _append_log(cfg.run_dir / "log.jsonl", {"step": step, "val": val})
    return val


def _save_sample(recipe: Recipe, step: int, cfg: TrainConfig) -> None:
    from impasto.io import save_image

    with torch.no_grad():
        image = recipe.sample(step)
    if image is not None:
        (cfg.run_dir / "samples").mkdir(parents=True, exist_ok=True)
        save_image(image, cfg.run_dir / "samples" / f"step_{step:08d}.png")


def _all_reduce_mean(values: dict[str, float], ctx: Context) -> dict[str, float]:
    if ctx.world <= 1 or not values:
        return dict(values)
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64,
                     device=ctx.device if ctx.device.type == "cuda" else "cpu")
    dist.all_reduce(t)
    return {k: float(v) / ctx.world for k, v in zip(keys, t.tolist(), strict=True)}


def _append_log(path: Path, record: dict[str, Any]) -> None:
    from impasto.io import write_failure

    try:
        with open(path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
            fh.flush()
    except OSError as exc:  # a line cut by a full disk is dropped on resume (_truncate_log)
        failure = write_failure(exc, path, note="training stopped; free space and --resume")
        if failure is None:
            raise
        raise failure from exc


def read_log(path: Path) -> list[dict[str, Any]]:
    rows = []
    if path.is_file():
        for line in path.read_text().splitlines():
            with contextlib.suppress(ValueError):
                rows.append(json.loads(line))
    return rows


def _truncate_log(path: Path, step: int) -> None:
    """On (re)start keep only records up to the checkpoint's step; drop a line cut by a kill."""
    rows = [r for r in read_log(path) if r.get("step", 0) <= step]
    from impasto.io import write_bytes_atomic

    if path.exists() or rows:
        write_bytes_atomic(path, "".join(json.dumps(r) + "\n" for r in rows).encode())


def plot_losses(log: Path, out: Path) -> None:
    """Training (and validation) curves from log.jsonl as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_log(log)
    train_rows = [r for r in rows if "val" not in r]
    val_rows = [r for r in rows if "val" in r]
    keys = sorted({k for r in train_rows for k in r if k not in ("step", "time")})
    if not keys:
        return
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for k in keys:
        pts = [(r["step"], r[k]) for r in train_rows if k in r]
        ax.plot(*zip(*pts, strict=True), label=k)
    for k in sorted({k for r in val_rows for k in r["val"]}):
        pts = [(r["step"], r["val"][k]) for r in val_rows if k in r["val"]]
        ax.plot(*zip(*pts, strict=True), "o--", label=f"val {k}")
    ax.set_xlabel("step")
    ax.set_yscale("log" if all(v > 0 for r in train_rows for k2, v in r.items() if k2 in keys) else "linear")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    from impasto.io import atomic_path

    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
