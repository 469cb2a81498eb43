"""The shared training loop: DDP under torchrun, equivalence to one process, checkpoints, kill + resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from impasto.cli import main
from impasto.models import files
from impasto.train import checkpoint as ckpt

WORKER = Path(__file__).with_name("ddp_worker.py")


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(WORKER.parent)}


def _torchrun(nproc: int, out: Path, batch: int, accum: int, steps: int) -> None:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
           str(WORKER), str(out), str(batch), str(accum), str(steps)]
    if nproc == 1:
        cmd = [sys.executable, str(WORKER), str(out), str(batch), str(accum), str(steps)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_env())
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_torchrun_two_processes_stay_in_sync_and_match_one_process(tmp_path):
    ddp, single = tmp_path / "ddp", tmp_path / "single"
    _torchrun(2, ddp, batch=4, accum=1, steps=4)
    _torchrun(1, single, batch=4, accum=2, steps=4)  # same global batch via accumulation
    r0 = torch.load(ddp / "params_rank0.pt", weights_only=True)
    r1 = torch.load(ddp / "params_rank1.pt", weights_only=True)
    one = torch.load(single / "params_rank0.pt", weights_only=True)
    init = torch.load(ddp / "params_init.pt", weights_only=True)
    for k in r0:
        assert torch.equal(r0[k], r1[k]), f"ranks diverged at {k}"
    # Adam turns near-zero gradients (e.g. biases right before an instance norm) into full-size steps, so
    # float-summation order shows up on single weights; the update as a whole must agree
    flat = lambda sd: torch.cat([v.flatten() for v in sd.values()])  # noqa: E731
    update_ddp, update_one = flat(r0) - flat(init), flat(one) - flat(init)
    assert (update_ddp - update_one).norm() < 0.1 * update_ddp.norm()

    def losses(run: Path) -> list[float]:
        return [r["total"] for r in map(json.loads, (run / "run" / "log.jsonl").read_text().splitlines())
                if "val" not in r]

    assert losses(ddp) == pytest.approx(losses(single), rel=1e-4) and len(losses(ddp)) == 4
    assert [p.name for p in ckpt.checkpoint_paths(ddp / "run" / "checkpoints")] == ["step_00000004.pt"]
    steps = [r["step"] for r in map(json.loads, (ddp / "run" / "log.jsonl").read_text().splitlines()) if "val" not in r]
    assert steps == [1, 2, 3, 4]  # logged once (rank 0), not once per rank


TRAIN = ["train", "fast-style", "--size", "32", "--style-size", "64", "--batch", "2", "--width", "8",
         "--precision", "fp32", "--device", "cpu", "--log-every", "1", "--quiet"]


def _train_args(content_dir: Path, style: Path, out: Path, steps: int, save_every: int, *extra: str) -> list[str]:
    return [*TRAIN, "-s", str(style), "--content-dir", str(content_dir), "--steps", str(steps),
            "--save-every", str(save_every), "--out", str(out), *extra]


@pytest.fixture()
def tiny_content(tmp_path_factory) -> Path:
    from impasto import bundled

    folder = tmp_path_factory.mktemp("content")
    for name, path in bundled.photos().items():
        (folder / f"{name}.jpg").write_bytes(path.read_bytes())
    (folder / "broken.jpg").write_bytes(b"not really a jpeg")
    return folder


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path, tiny_content):
    from impasto import bundled

    style = bundled.style("picabia_udnie")
    straight, resumed = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    assert main(_train_args(tiny_content, style, straight, 6, 3)) == 0
    assert main(_train_args(tiny_content, style, resumed, 3, 3)) == 0
    assert main(_train_args(tiny_content, style, resumed, 6, 3, "--resume")) == 0
    a, _ = files.load(straight, "fast-style")
    b, meta = files.load(resumed, "fast-style")
    assert meta["steps"] == 6
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_starting_over_an_existing_run_needs_resume(tmp_path, tiny_content, capsys):
    from impasto import bundled

    out = tmp_path / "m.safetensors"
    assert main(_train_args(tiny_content, bundled.style("picabia_udnie"), out, 2, 2)) == 0
    assert main(_train_args(tiny_content, bundled.style("picabia_udnie"), out, 4, 2)) == 2
    assert "--resume" in capsys.readouterr().err


def test_sigkill_mid_run_then_resume_loses_only_unsaved_steps(tmp_path, tiny_content):
    from impasto import bundled

    out = tmp_path / "k.safetensors"
    args = _train_args(tiny_content, bundled.style("picabia_udnie"), out, 400, 2)
    cmd = [sys.executable, "-m", "impasto", *args]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpts = tmp_path / "k_run" / "checkpoints"
    deadline = time.time() + 240
    while time.time() < deadline and len(ckpt.checkpoint_paths(ckpts)) < 2:
        time.sleep(0.2)
    time.sleep(0.7)  # land somewhere between saves, maybe during one
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = ckpt.latest(ckpts)
    assert saved is not None  # a save cut by the kill leaves at most a hidden temp file, never a bad .pt
    step_saved = ckpt.load(saved)["step"]
    assert step_saved >= 4 and step_saved % 2 == 0
    log_before = (tmp_path / "k_run" / "log.jsonl").read_text().splitlines()
    resume = _train_args(tiny_content, bundled.style("picabia_udnie"), out, step_saved + 4, 2, "--resume")
    assert main(resume) == 0
    rows = [json.loads(x) for x in (tmp_path / "k_run" / "log.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows if "val" not in r]
    assert steps == list(range(1, step_saved + 5)), steps  # no gap, no duplicate after the resume
    assert len(log_before) >= 1
    first = next(r["total"] for r in rows if "val" not in r)
    last = [r["total"] for r in rows if "val" not in r][-1]
    assert last < first  # the loss keeps going down across the kill
    assert files.read_meta(out)[1]["steps"] == step_saved + 4
    assert not list(ckpts.glob(".*.tmp"))  # stale temp files from the killed save are cleaned
