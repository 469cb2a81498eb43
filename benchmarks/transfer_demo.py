"""Transfer learning for generation: does fine-tuning a pretrained DCGAN / VAE beat training from
scratch on a small new folder at equal steps? Prints JSON (validation metric of both, side by side).

Data (offline): scikit-image's LFW faces via ``impasto data faces`` -- 160 grey faces to pretrain on,
40 other faces as sepia prints as the small target folder (half held out for validation).
Pretraining uses batch 32; the target runs batch 16 (20 training images).
DCGAN: pretrain, then (a) fine-tune with FreezeD (first discriminator blocks frozen) vs (b) scratch;
metric: kernel distance (KID, unbiased on small sets) of VGG features, generated vs held-out target faces
(lower is better; the Frechet distance is logged too but is dominated by small-set bias here).
VAE: pretrain, then (a) fine-tune with the first encoder block frozen vs (b) scratch; metric:
held-out per-pixel MSE and negative ELBO (lower is better).

    python benchmarks/transfer_demo.py --work build/transfer [--pretrain-steps 1500 --steps 300]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

from impasto.cli import main as cli
from impasto.train.loop import read_log


def _val(run: Path) -> list[dict[str, Any]]:
    return [r | r.pop("val") for r in read_log(run / "log.jsonl") if "val" in r]


def _train(kind: str, data: Path, out: Path, steps: int, common: list[str], extra: list[str]) -> dict[str, Any]:
    t0 = time.perf_counter()
    code = cli(["train", kind, "--data-dir", str(data), "--steps", str(steps), "--out", str(out), "--quiet",
                *common, *extra])
    if code != 0:
        raise SystemExit(f"training {out} failed with exit code {code}")
    rows = _val(out)
    return {"seconds": round(time.perf_counter() - t0, 1), "curve": rows, "final": rows[-1]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("build/transfer"))
    ap.add_argument("--pretrain-steps", type=int, default=1500)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--fresh", action="store_true", help="delete earlier runs in --work first")
    ap.add_argument("--only", choices=["dcgan", "vae"], default=None, help="run one of the two")
    args = ap.parse_args()
    if args.fresh and args.work.exists():
        shutil.rmtree(args.work)
    data = args.work / "data"
    if not (data / "target").is_dir():
        cli(["data", "faces", str(data)])
    save = str(max(1, args.steps // 6))
    plans = {
        "dcgan": (["--size", "32", "--ngf", "32", "--ndf", "32", "--val-fraction", "0.5"],
                  ["--freeze-d", "2"], "kid"),
        "vae": (["--size", "32", "--base", "32", "--zdim", "64", "--val-fraction", "0.5",
                 "--kl-warmup", "200", "--lr", "1e-3"], ["--freeze-encoder", "1"], "neg_elbo"),
    }
    report: dict[str, Any] = {"pretrain_steps": args.pretrain_steps, "target_steps": args.steps}
    for kind, (common, freeze, metric) in plans.items():
        if args.only and kind != args.only:
            continue
        pre = args.work / f"{kind}_pretrain"
        if not (pre / "model.safetensors").exists():
            shutil.rmtree(pre, ignore_errors=True)
            _train(kind, data / "pretrain", pre, args.pretrain_steps,
                   [*common, "--batch", "32", "--val-fraction", "0.1",
                    "--save-every", str(max(1, args.pretrain_steps // 5))], [])
        runs = {}
        for name, extra in (("finetuned", ["--finetune-from", str(pre), *freeze]), ("scratch", [])):
            out = args.work / f"{kind}_{name}"
            shutil.rmtree(out, ignore_errors=True)
            target_args = [*common, "--batch", "16", "--save-every", save]
            runs[name] = _train(kind, data / "target", out, args.steps, target_args, extra)
        ft, sc = runs["finetuned"]["final"][metric], runs["scratch"]["final"][metric]
        report[kind] = {"metric": metric, "finetuned": ft, "scratch": sc, "scratch_over_finetuned": sc / ft,
                        "curves": {n: [(r["step"], r[metric]) for r in r_["curve"]] for n, r_ in runs.items()},
                        "finals": {n: r_["final"] for n, r_ in runs.items()},
                        "seconds": {n: r_["seconds"] for n, r_ in runs.items()}}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
