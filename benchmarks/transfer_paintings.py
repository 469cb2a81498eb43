"""Transfer-learned generation on real paintings: does a DCGAN / VAE pretrained on landscape photos,
fine-tuned on a small set of paintings, beat the same network trained from scratch on that set for the
same number of steps? Over several seeds, with intervals.

Given pretrained models (``--dcgan``, ``--vae``: model files or run folders, e.g. from ``make
demo-transfer``), for each seed it trains two runs on the corpus' painting subset (``--prefix kmonet_``,
split ``train``): *finetuned* (``--finetune-from`` the pretrained model; DCGAN ``--freeze-d 2``, VAE
``--freeze-encoder 1``) and *scratch* (same settings, random start). Each run is resumable and skipped
when already complete. Then it scores each final model:

* KID (pooled VGG relu5_3 at twice the image size) of ``--samples`` samples vs the held-out paintings
  (split ``test`` by default; centre crops at the model's size), with its jackknife standard error;
  references: the pretrained model itself (step 0 of fine-tuning) and the training paintings (a floor).
* Domain probe: the fraction of the samples that a linear probe (``impasto.probe``, fitted on ``train``
  photos (``--photos``), the target paintings and other painters' work (``--other-paintings``), centre-cropped
  at the model's size) calls the target painter; the pretrained photo model's fraction is the baseline,
  and the probe's calls on held-out images of each kind are its check.
* VAE: held-out reconstruction MSE and negative ELBO as well.
* Over seeds: the mean of each arm with its 95% t interval, and the paired difference scratch - finetuned
  (above 0: fine-tuning is ahead), with how many seeds fine-tuning wins.
* Learning curves: the validation KID the trainer logs at each checkpoint (the split's ``val`` rows),
  per seed and arm (curves.png); sample sheets per kind (held-out | finetuned | scratch).

    python benchmarks/transfer_paintings.py --dcgan build/transfer_paintings/dcgan_pretrain \\
        --vae build/transfer_paintings/vae_pretrain --steps 800 --seeds 0,1,2 [--quick]

Writes report.json, curves.png and samples_<kind>.png under ``--work`` (``--work``/quick with --quick).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from corpus_eval import corpus_files, features, fit_probe, kid, mean_interval, probe_row, spread

from impasto.cli import main as cli
from impasto.errors import InputError
from impasto.generate import sample
from impasto.io import save_image
from impasto.models import files
from impasto.probe import DomainProbe
from impasto.sheet import grid
from impasto.train.augment import DiffAugment
from impasto.train.data import ImageFolder
from impasto.train.loop import read_log

#: per kind: the widths a fine-tuned run must share with its pretrained model, and the transfer flags
WIDTHS = {"dcgan": ("nz", "ngf", "ndf"), "vae": ("zdim", "base")}
FREEZE = {"dcgan": ["--freeze-d", "2"], "vae": ["--freeze-encoder", "1"]}
SAMPLE_SEED = 2024
#: what a DCGAN file written before the small-folder settings were recorded had
UNRECORDED = {"ema": 0.0, "diff_augment": ""}


@dataclass(frozen=True)
class Held:
    """The held-out target paintings, with their ``features`` rows computed once for every score."""

    images: list[torch.Tensor]
    features: torch.Tensor
    feature_size: int

    @classmethod
    def of(cls, images: list[torch.Tensor], model_size: int) -> Held:
        fs = max(64, 2 * model_size)
        return cls(images, features(images, fs), fs)


def _recipe(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    """What a finished run's model file must record to count as this benchmark's run."""
    if kind != "dcgan":
        return {"steps": args.steps}
    return {"steps": args.steps, "lr": args.dcgan_lr, "ema": args.ema,
            "diff_augment": DiffAugment(args.diff_augment).name}


def _done(out: Path, recipe: dict[str, Any]) -> bool:
    """Complete with this recipe: skip it. Another recipe's run in the folder stops the benchmark
    rather than being scored under this one's name."""
    model = out / "model.safetensors"
    if not model.is_file():
        return False
    meta = files.read_meta(model)[1]
    found = {k: meta.get(k, UNRECORDED.get(k)) for k in recipe}
    if found["steps"] == recipe["steps"] and found != recipe:
        raise SystemExit(f"{out} holds a run of another recipe ({found}, not {recipe}); pass another --work")
    return found == recipe


def _train(argv: list[str], out: Path, recipe: dict[str, Any]) -> float:
    """Train (or resume, or skip when complete) one run; seconds spent now."""
    if _done(out, recipe):
        return 0.0
    resume = ["--resume"] if (out / "checkpoints").is_dir() else []
    t0 = time.perf_counter()
    code = cli([*argv, *resume])
    if code != 0:
        raise SystemExit(f"training {out} failed with exit code {code}")
    return round(time.perf_counter() - t0, 1)


def _argv(kind: str, meta: dict[str, Any], args: argparse.Namespace, seed: int, out: Path) -> list[str]:
    c = args.corpus
    argv = ["train", kind, "--data-dir", str(c / "paintings"), "--split-file", str(c / "split.tsv"),
            "--prefix", args.prefix, "--size", str(meta["size"]), "--batch", str(args.batch),
            "--steps", str(args.steps), "--save-every", str(max(1, args.steps // args.points)), "--keep", "1",
            "--log-every", "10", "--seed", str(seed), "--out", str(out), "--quiet"]
    argv += [x for w in WIDTHS[kind] for x in (f"--{w}", str(meta[w]))]
    if args.max_images:
        argv += ["--max-images", str(args.max_images)]
    if kind == "vae":
        argv += ["--val-kid", "--kl-warmup", str(max(1, args.steps // 4))]
    else:  # the small-folder GAN recipe, the same for both arms
        argv += ["--lr", str(args.dcgan_lr), "--ema", str(args.ema), "--diff-augment", args.diff_augment]
    return argv


def _score(kind: str, model: Path, held: Held, probe: DomainProbe, args: argparse.Namespace) -> dict[str, Any]:
    """KID of samples vs the held-out paintings, the fraction the probe calls the target painter (and, for
    a VAE, held-out reconstruction and ELBO)."""
    images, _ = sample(model, args.samples, seed=SAMPLE_SEED)
    rows = features(list(images.split(1)), held.feature_size)
    row = kid(rows, held.features)
    row["probe_target"] = probe_row(probe, rows)["fraction"]
    if kind == "vae":
        from impasto.models.vae import kl_divergence, load_vae, reconstruction_error

        vae, _ = load_vae(files.model_file(model))
        x = torch.cat(held.images)
        with torch.no_grad():
            mu, _ = vae.encode(x)
            row["mse"] = float((vae.decode(mu) - x).pow(2).mean())
            x_hat, mu, logvar = vae(x, generator=torch.Generator().manual_seed(0))
            row["neg_elbo"] = float(reconstruction_error(x_hat, x) + kl_divergence(mu, logvar))
    row["samples"] = images[:16]
    return row


def _curve(run: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["val"]["kid"]) for r in read_log(run / "log.jsonl") if "kid" in r.get("val", {})]


def _summary(runs: dict[str, dict[int, dict[str, Any]]], key: str, higher_is_better: bool = False) -> dict[str, Any]:
    seeds = sorted(runs["finetuned"])
    ft, sc = ([runs[a][s][key] for s in seeds] for a in ("finetuned", "scratch"))
    sign = -1 if higher_is_better else 1  # the difference is above 0 where fine-tuning is ahead
    return {"finetuned": mean_interval(ft), "scratch": mean_interval(sc),
            "scratch_minus_finetuned": mean_interval([sign * (b - a) for a, b in zip(ft, sc, strict=True)]),
            "difference_sign": "finetuned - scratch" if higher_is_better else "scratch - finetuned",
            "finetuned_better_seeds": sum(sign * (b - a) > 0 for a, b in zip(ft, sc, strict=True)), "seeds": seeds}


def _probe(held: Held, args: argparse.Namespace, size: int) -> tuple[DomainProbe, dict[str, Any]]:
    """The domain probe fitted on ``train`` rows of photos, the target paintings and other painters, and
    its calls on held-out rows of each."""
    kinds = {"photos": ("photos", args.photos), "target": ("paintings", args.prefix),
             "others": ("paintings", args.other_paintings)}
    fs = held.feature_size
    train = {name: _images(spread(corpus_files(args.corpus, folder, prefixes, "train"), args.probe_rows), size)
             for name, (folder, prefixes) in kinds.items()}
    probe = fit_probe(train, fs)
    check = {"fitted_on": {name: len(rows) for name, rows in train.items()},
             "held_out_target": probe_row(probe, held.features)}
    for name in ("photos", "others"):
        folder, prefixes = kinds[name]
        paths = spread(corpus_files(args.corpus, folder, prefixes, args.eval_splits), args.probe_rows)
        check[f"held_out_{name}"] = probe_row(probe, features(_images(paths, size), fs))
    return probe, check


def _images(paths: list[Path], size: int) -> list[torch.Tensor]:
    """Centre square crops at the model's size: the held-out images as validation sees them."""
    folder = ImageFolder(paths, size, augment=False)
    return [folder[i][None] for i in range(len(folder))]


def run_kind(kind: str, pretrained: Path, args: argparse.Namespace) -> dict[str, Any]:
    _, meta = files.read_meta(files.model_file(pretrained))
    size = int(meta["size"])
    held = Held.of(_images(corpus_files(args.corpus, "paintings", args.prefix, args.eval_splits, args.max_eval),
                           size), size)
    floor = _images(corpus_files(args.corpus, "paintings", args.prefix, "train", args.max_floor), size)
    probe, probe_check = _probe(held, args, size)
    runs: dict[str, dict[int, dict[str, Any]]] = {"finetuned": {}, "scratch": {}}
    for seed in args.seed_list:
        for arm in runs:
            out = args.work / f"{kind}_{arm}_seed{seed}"
            extra = ["--finetune-from", str(pretrained), *FREEZE[kind]] if arm == "finetuned" else []
            seconds = _train([*_argv(kind, meta, args, seed, out), *extra], out, _recipe(kind, args))
            runs[arm][seed] = {**_score(kind, out, held, probe, args), "seconds": seconds,
                               "curve": _curve(out)}
    report = {"pretrained": str(pretrained), "size": size, "held_out": len(held.images), "steps": args.steps,
              "kid": _summary(runs, "kid"),
              "probe_target": _summary(runs, "probe_target", higher_is_better=True),
              "probe_check": probe_check,
              "kid_pretrained_model": {k: v for k, v in _score(kind, pretrained, held, probe, args).items()
                                       if k != "samples"},
              "kid_train_paintings_floor": kid(features(floor, held.feature_size), held.features)}
    if kind == "vae":
        report["neg_elbo"], report["mse"] = _summary(runs, "neg_elbo"), _summary(runs, "mse")
    _sheet(kind, held.images, runs, args.work / f"samples_{kind}.png", size)
    report["runs"] = {arm: {s: {k: v for k, v in r.items() if k != "samples"} for s, r in rs.items()}
                      for arm, rs in runs.items()}
    return report


def _sheet(kind: str, held: list[torch.Tensor], runs: dict[str, Any], path: Path, size: int) -> None:
    seed = min(runs["finetuned"])
    rows = [("held-out", held[:8]), (f"finetuned s{seed}", list(runs["finetuned"][seed]["samples"][:8].split(1))),
            (f"scratch s{seed}", list(runs["scratch"][seed]["samples"][:8].split(1)))]
    cells = [c for _, imgs in rows for c in imgs]
    labels = [name if i == 0 else "" for name, imgs in rows for i in range(len(imgs))]
    save_image(grid(cells, columns=8, cell=max(96, size), labels=labels), path)


def _plot(reports: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(reports), figsize=(6 * len(reports), 4), dpi=100, squeeze=False)
    for ax, (kind, rep) in zip(axes[0], reports.items(), strict=True):
        for arm, colour in (("finetuned", "tab:blue"), ("scratch", "tab:orange")):
            for i, (seed, run) in enumerate(sorted(rep["runs"][arm].items())):
                if run["curve"]:
                    ax.plot(*zip(*run["curve"], strict=True), color=colour, alpha=0.8,
                            label=arm if i == 0 else None, marker="o", markersize=3)
                    ax.annotate(f"s{seed}", run["curve"][-1], fontsize=6, color=colour)
        ax.set_title(f"{kind}: validation KID ('val' rows) per seed")
        ax.set_xlabel("step")
        ax.set_yscale("symlog", linthresh=1)  # one GAN checkpoint can be 100x the others; KID may be < 0
        ax.set_ylabel("KID (lower is better; log above 1)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dcgan", type=Path, default=None, help="pretrained DCGAN (model file or run folder)")
    ap.add_argument("--vae", type=Path, default=None, help="pretrained VAE (model file or run folder)")
    ap.add_argument("--corpus", type=Path, default=Path("../shared/corpus"))
    ap.add_argument("--prefix", default="kmonet_", help="the painting subset, by name prefix (kmonet_)")
    ap.add_argument("--photos", default="vg2p_,kphoto_", help="the domain probe's photos (vg2p_,kphoto_)")
    ap.add_argument("--other-paintings", default="wikiart", help="the domain probe's other painters (wikiart)")
    ap.add_argument("--probe-rows", type=int, default=300, help="images of each kind the probe is fitted on (300)")
    ap.add_argument("--max-images", type=int, default=None, help="train on at most this many of them")
    ap.add_argument("--eval-splits", default="test", help="held-out split(s) to score on (test)")
    ap.add_argument("--max-eval", type=int, default=None, help="at most this many held-out paintings")
    ap.add_argument("--steps", type=int, default=800, help="steps of every fine-tuned and scratch run (800)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--ema", type=float, default=0.0, help="DCGAN runs: generator average decay (0 = off)")
    ap.add_argument("--dcgan-lr", type=float, default=2e-4, help="DCGAN runs: Adam step size, both nets (2e-4)")
    ap.add_argument("--diff-augment", default="", help="DCGAN runs: DiffAugment ops, e.g. color,translation,cutout")
    ap.add_argument("--points", type=int, default=8, help="checkpoints (validation points) per run (8)")
    ap.add_argument("--seeds", default="0,1,2", help="comma list (0,1,2)")
    ap.add_argument("--samples", type=int, default=256, help="samples per model for KID (256)")
    ap.add_argument("--max-floor", type=int, default=256, help="training paintings in the floor reference (256)")
    ap.add_argument("--work", type=Path, default=Path("build/transfer_paintings"))
    ap.add_argument("--quick", action="store_true", help="smoke check: 3 steps, batch 8, 2 seeds, 16 samples")
    args = ap.parse_args()
    if args.dcgan is None and args.vae is None:
        ap.error("give --dcgan and/or --vae (pretrained models)")
    if args.quick:
        args.steps, args.batch, args.points, args.samples, args.max_eval, args.max_floor = 3, 8, 1, 16, 8, 16
        args.probe_rows = 8
        args.seeds, args.work = ",".join(args.seeds.split(",")[:2]), args.work / "quick"
    try:
        DiffAugment(args.diff_augment)
    except InputError as exc:
        ap.error(str(exc))
    args.seed_list = [int(s) for s in args.seeds.split(",") if s.strip()]
    args.work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    reports = {kind: run_kind(kind, path, args) for kind, path in (("dcgan", args.dcgan), ("vae", args.vae))
               if path is not None}
    _plot(reports, args.work / "curves.png")
    result = {"prefix": args.prefix, "eval_splits": args.eval_splits, "seeds": args.seed_list, "quick": args.quick,
              "dcgan_recipe": _recipe("dcgan", args), "batch": args.batch,
              **reports, "seconds": round(time.perf_counter() - t0, 1)}
    (args.work / "report.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
