"""On the lent machine: the #18 recipe at 256 px (``make train-adain-wct``'s flags, batch 8) from
``.dev/init.safetensors`` on the carried slice, in segments, with a snapshot of the decoder in ``$OUT``
after each, so a call cut off at its time limit still returns its last segment.

    python tools/lent_gpu/train_adain.py --budget 540 --segments 4

Each call starts a fresh run folder: a warm machine keeps the last call's run, and resuming it would
skip the steps this call is asked for (that cost one call in session 11). At most ``--segments``
snapshots come back, with the best-on-val decoder and the log (the tool returns 8 files).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

RECIPE = ["--arch", "skip", "--skips", "relu3_1,relu2_1", "--skip-scale", "0.1", "--slim", "2",
          "--wct-levels", "relu2_1", "--strength-range", "0.5,1", "--style-weight", "3", "--gram-weight", "3",
          "--size", "256", "--batch", "8", "--lr", "1e-4"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budget", type=float, required=True, help="seconds this call may train")
    ap.add_argument("--segments", type=int, default=4, help="snapshots to return, 1 to 6 (4)")
    ap.add_argument("--first", type=int, default=1000, help="steps of the first segment, which is timed")
    ap.add_argument("--workers", type=int, default=14)
    args = ap.parse_args()
    if not 1 <= args.segments <= 6:  # $OUT returns 8 files: the snapshots, the best and the log
        raise SystemExit("--segments must be 1 to 6")
    t0, out, run = time.time(), os.environ["OUT"], tempfile.mkdtemp(prefix="adain_gpu_run_")
    base = [sys.executable, "-m", "impasto", "train", "adain", "--content-dir", ".dev/corpus/photos",
            "--style-dir", ".dev/corpus/paintings", "--split-file", ".dev/corpus/split.tsv", *RECIPE,
            "--init", ".dev/init.safetensors", "--save-every", "500", "--keep", "2", "--run-dir", run,
            "--best-out", f"{out}/adain_gpu_best.safetensors", "--device", "cuda",
            "--workers", str(args.workers), "--json", "-q"]

    def segment(steps: int) -> dict[str, float]:
        t = time.time()
        resume = ["--resume"] if os.path.isdir(f"{run}/checkpoints") else []
        r = subprocess.run([*base, "--steps", str(steps), "--out", f"{run}/segment.safetensors", *resume],
                           capture_output=True, text=True)
        print(r.stdout[-700:], r.stderr[-1500:], flush=True)
        if r.returncode:
            sys.exit(r.returncode)
        shutil.copy(f"{run}/segment.safetensors", f"{out}/adain_gpu_{steps}.safetensors")
        shutil.copy(f"{run}/log.jsonl", f"{out}/log.jsonl")  # a call cut off still returns its log
        return {"wall": time.time() - t, "training": json.loads(r.stdout)["seconds"]}

    steps = args.first
    first = segment(steps)
    per_step = first["training"] / steps
    startup = first["wall"] - first["training"]  # each segment is a new process: CUDA, data scan, VGG
    left = args.budget - (time.time() - t0)
    size = int((left / max(1, args.segments - 1) - startup) / per_step) // 100 * 100
    for _ in range(args.segments - 1):
        if size < 100 or time.time() - t0 + startup + size * per_step > args.budget:
            break
        steps += size
        print(json.dumps({"segment_to": steps, **segment(steps), "elapsed": time.time() - t0}), flush=True)
    print(json.dumps({"steps": steps, "elapsed": time.time() - t0, "per_step": per_step, "startup": startup}))


if __name__ == "__main__":
    main()
