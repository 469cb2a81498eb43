"""DCGAN and VAE: shapes, training lowers the losses, freezing keeps weights bit-identical, fine-tuning
loads the pretrained weights, exact resume, deterministic generation, interpolation, the faces data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from impasto.cli import main
from impasto.models import files
from impasto.models.dcgan import Discriminator, Generator
from impasto.models.vae import ConvVAE, kl_divergence
from impasto.train.loop import read_log


@pytest.mark.parametrize("size", [32, 64, 128])
def test_dcgan_and_vae_shapes_at_every_size(size):
    g, d, v = Generator(size, nz=16, ngf=8), Discriminator(size, ndf=8), ConvVAE(size, zdim=8, base=8)
    with torch.no_grad():
        x = g(torch.randn(2, 16))
        assert x.shape == (2, 3, size, size) and float(x.min()) >= 0 and float(x.max()) <= 1
        real, fake = d(x, x)
        assert real.shape == fake.shape == (2,)
        rec, mu, logvar = v(x)
        assert rec.shape == x.shape and mu.shape == logvar.shape == (2, 8)


def test_kl_is_zero_for_the_prior_and_positive_otherwise():
    assert float(kl_divergence(torch.zeros(3, 4), torch.zeros(3, 4))) == 0
    assert float(kl_divergence(torch.ones(3, 4), torch.zeros(3, 4))) == pytest.approx(2.0)


def test_freeze_rejects_out_of_range_blocks():
    with pytest.raises(ValueError):
        Discriminator(32).freeze(4)
    with pytest.raises(ValueError):
        ConvVAE(32).freeze_encoder(4)


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("faces") / "data"
    assert main(["data", "faces", str(root), "--pretrain", "40"]) == 0
    assert len(list((root / "target").glob("*.png"))) == 160
    return root


def _dcgan(data: Path, out: Path, steps: int, *extra: str) -> list[str]:
    return ["train", "dcgan", "--data-dir", str(data), "--size", "32", "--ngf", "8", "--ndf", "8", "--nz", "16",
            "--batch", "8", "--steps", str(steps), "--save-every", "5", "--log-every", "1", "--val-fraction", "0.2",
            "--out", str(out), "--quiet", *extra]


def _vae(data: Path, out: Path, steps: int, *extra: str) -> list[str]:
    return ["train", "vae", "--data-dir", str(data), "--size", "32", "--base", "8", "--zdim", "16",
            "--batch", "8", "--steps", str(steps), "--save-every", "10", "--log-every", "1", "--val-fraction", "0.2",
            "--kl-warmup", "5", "--lr", "3e-3", "--out", str(out), "--quiet", "--device", "cpu", *extra]


@pytest.fixture(scope="module")
def dcgan_run(faces) -> Path:
    out = faces.parent / "dcgan"
    assert main(_dcgan(faces / "pretrain", out, 10)) == 0
    return out


@pytest.fixture(scope="module")
def vae_run(faces) -> Path:
    out = faces.parent / "vae"
    assert main(_vae(faces / "pretrain", out, 30)) == 0
    return out


def test_dcgan_trains_with_validation_distance_samples_and_plot(dcgan_run):
    rows = read_log(dcgan_run / "log.jsonl")
    assert [r["step"] for r in rows if "val" not in r] == list(range(1, 11))
    d_loss = [r["d"] for r in rows if "val" not in r]
    assert sum(d_loss[-3:]) < sum(d_loss[:3])  # the discriminator learns to tell real from fake
    assert all(r["val"]["fd"] >= 0 and "kid" in r["val"] for r in rows if "val" in r)
    assert (dcgan_run / "loss.png").exists() and len(list((dcgan_run / "samples").glob("*.png"))) >= 2
    kind, meta = files.read_meta(dcgan_run / "model.safetensors")
    assert kind == "dcgan" and meta["size"] == 32 and meta["steps"] == 10


def test_vae_training_lowers_reconstruction_and_validates(vae_run):
    rows = [r for r in read_log(vae_run / "log.jsonl") if "val" not in r]
    assert sum(r["recon"] for r in rows[-5:]) < sum(r["recon"] for r in rows[:5])
    assert rows[0]["beta"] < rows[-1]["beta"] == 1.0  # KL annealing
    val = [r["val"] for r in read_log(vae_run / "log.jsonl") if "val" in r]
    assert val[-1]["mse"] < val[0]["mse"] and {"kl", "neg_elbo"} <= set(val[-1])


def test_finetune_with_freeze_d_keeps_frozen_weights_bit_identical(dcgan_run, faces, tmp_path, capsys):
    out = tmp_path / "ft"
    assert main(_dcgan(faces / "target", out, 5, "--finetune-from", str(dcgan_run), "--freeze-d", "2",
                       "--json")) == 0
    frozen = json.loads(capsys.readouterr().out)["frozen_parameters"]
    assert any(n.startswith("blocks.1.") for n in frozen) and not any(n.startswith("blocks.2.") for n in frozen)
    before, _ = files.load(dcgan_run / "model.safetensors", "dcgan")
    after, meta = files.load(out / "model.safetensors", "dcgan")
    assert meta["finetuned_from"] == str(dcgan_run) and meta["freeze_d"] == 2
    for name in frozen:
        assert torch.equal(before[f"D.{name}"], after[f"D.{name}"]), name
    assert not torch.equal(before["D.blocks.2.0.weight"], after["D.blocks.2.0.weight"])
    assert not torch.equal(before["G.net.0.weight"], after["G.net.0.weight"])


def test_vae_finetune_from_a_checkpoint_with_frozen_encoder(vae_run, faces, tmp_path):
    from impasto.train import checkpoint as ckpt

    source = ckpt.latest(vae_run / "checkpoints")
    out = tmp_path / "vft.safetensors"
    assert main(_vae(faces / "target", out, 3, "--finetune-from", str(source), "--freeze-encoder", "1")) == 0
    before, _ = files.load(vae_run / "model.safetensors", "vae")
    after, _ = files.load(out, "vae")
    assert torch.equal(before["vae.blocks.0.0.weight"], after["vae.blocks.0.0.weight"])
    assert not torch.equal(before["vae.blocks.1.0.weight"], after["vae.blocks.1.0.weight"])


def test_finetune_refuses_another_kind_or_architecture(dcgan_run, vae_run, faces, tmp_path, capsys):
    assert main(_vae(faces / "target", tmp_path / "a", 2, "--finetune-from", str(dcgan_run))) == 2
    assert "'dcgan' model, not 'vae'" in capsys.readouterr().err
    bigger = _dcgan(faces / "target", tmp_path / "b", 2, "--finetune-from", str(dcgan_run))
    bigger[bigger.index("--ngf") + 1] = "16"
    assert main(bigger) == 2
    assert "does not fit" in capsys.readouterr().err


SMALL_FOLDER = ("--ema", "0.9", "--diff-augment", "color,translation,cutout")


@pytest.mark.parametrize("recipe", [(), SMALL_FOLDER], ids=["plain", "ema-and-diffaugment"])
def test_resume_continues_a_dcgan_exactly(faces, tmp_path, recipe):
    straight, resumed = tmp_path / "s", tmp_path / "r"
    assert main(_dcgan(faces / "pretrain", straight, 10, "--device", "cpu", *recipe)) == 0
    assert main(_dcgan(faces / "pretrain", resumed, 5, "--device", "cpu", *recipe)) == 0
    assert main(_dcgan(faces / "pretrain", resumed, 10, "--device", "cpu", "--resume", *recipe)) == 0
    a, _ = files.load(straight / "model.safetensors", "dcgan")
    b, _ = files.load(resumed / "model.safetensors", "dcgan")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_continues_a_vae_exactly(faces, tmp_path):
    straight, resumed = tmp_path / "s", tmp_path / "r"
    assert main(_vae(faces / "pretrain", straight, 20)) == 0
    assert main(_vae(faces / "pretrain", resumed, 10)) == 0
    assert main(_vae(faces / "pretrain", resumed, 20, "--resume")) == 0
    a, _ = files.load(straight / "model.safetensors", "vae")
    b, _ = files.load(resumed / "model.safetensors", "vae")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_generate_is_deterministic_with_a_seed_and_writes_files(dcgan_run, tmp_path, capsys, monkeypatch):
    from impasto import generate
    from impasto.models import dcgan

    a, _ = generate.sample(dcgan_run, 6, seed=3)
    b, _ = generate.sample(dcgan_run, 6, seed=3)
    c, _ = generate.sample(dcgan_run, 6, seed=4)
    assert torch.equal(a, b) and not torch.equal(a, c)
    grid = tmp_path / "grid.png"
    real_load, reads = dcgan.load_generator, []

    def counted(path):
        reads.append(path)
        return real_load(path)

    monkeypatch.setattr(dcgan, "load_generator", counted)
    assert main(["generate", "--model", str(dcgan_run), "-n", "6", "--seed", "3", "-o", str(grid),
                 "--out-dir", str(tmp_path / "each"), "--json"]) == 0
    assert grid.exists() and len(json.loads(capsys.readouterr().out)["files"]) == 6
    assert len(reads) == 1  # the size check and the sampling share one read of the model


def test_vae_interpolation_and_its_errors(vae_run, dcgan_run, faces, tmp_path, capsys):
    a, b = sorted((faces / "pretrain").glob("*.png"))[:2]
    out = tmp_path / "interp.png"
    assert main(["generate", "--model", str(vae_run), "--interpolate", str(a), str(b), "--steps", "5",
                 "-o", str(out), "--quiet"]) == 0
    from impasto.generate import interpolate
    from impasto.io import load_image

    line = interpolate(vae_run, load_image(a), load_image(b), 5)
    assert line.shape == (5, 3, 32, 32) and out.exists()
    assert main(["generate", "--model", str(dcgan_run), "--interpolate", str(a), str(b), "-o", str(out)]) == 2
    assert "needs a VAE" in capsys.readouterr().err
    from impasto import bundled

    assert main(["generate", "--model", str(bundled.model("fast4")), "-o", str(tmp_path / "x.png")]) == 2


def test_generate_refuses_the_other_modes_flags_instead_of_ignoring_them(vae_run, faces, tmp_path, capsys):
    a, b = sorted((faces / "pretrain").glob("*.png"))[:2]
    out = str(tmp_path / "g.png")
    line = ["generate", "--model", str(vae_run), "--interpolate", str(a), str(b), "-o", out]
    for extra in (["-n", "7"], ["--seed", "5"]):
        assert main([*line, *extra]) == 2
        assert "-n and --seed are for sampling" in capsys.readouterr().err
    assert main(["generate", "--model", str(vae_run), "--steps", "3", "-o", out]) == 2
    assert "--steps is the number of points of --interpolate" in capsys.readouterr().err
    assert main([*line, "--steps", "3", "--columns", "1", "--quiet"]) == 0  # --columns is honoured
    from PIL import Image

    width, height = Image.open(out).size
    assert height > 2 * width  # three cells in one column
    with pytest.raises(SystemExit) as refused:  # argparse: one line, exit 2
        main(["generate", "--model", str(vae_run), "--out-dir", "", "-o", out])
    assert refused.value.code == 2 and "--out-dir: needs a value" in capsys.readouterr().err


def test_generate_writes_all_or_nothing_and_refuses_a_folder_with_an_earlier_runs_files(
        dcgan_run, tmp_path, capsys, monkeypatch):
    grid, each = tmp_path / "grid.png", tmp_path / "each"
    assert main(["generate", "--model", str(dcgan_run), "-n", "4", "-o", str(grid), "--out-dir", str(each),
                 "--quiet"]) == 0
    assert main(["generate", "--model", str(dcgan_run), "-n", "2", "-o", str(grid), "--out-dir", str(each)]) == 2
    assert "00000.png ... 00003.png from an earlier run" in capsys.readouterr().err
    from impasto import io
    from impasto.errors import InputError

    real_save, calls = io.save_image, []

    def full_disk_on_the_third(image, path, **kw):
        calls.append(path)
        if len(calls) == 3:
            raise InputError(f"{path}: no space left on the device; nothing was written")
        return real_save(image, path, **kw)

    monkeypatch.setattr(io, "save_image", full_disk_on_the_third)
    fresh, grid2 = tmp_path / "fresh", tmp_path / "grid2.png"
    assert main(["generate", "--model", str(dcgan_run), "-n", "4", "-o", str(grid2), "--out-dir", str(fresh)]) == 2
    assert "no space left" in capsys.readouterr().err
    assert not grid2.exists() and not fresh.exists()  # the two files written before the failure are gone


def test_kernel_distance_is_near_zero_for_one_distribution_and_large_for_another():
    from impasto.metrics import kernel_distance

    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(200, 8, generator=gen, dtype=torch.float64) for _ in range(2))
    shifted = torch.randn(200, 8, generator=gen, dtype=torch.float64) + 1.5
    same, other = kernel_distance(a, b), kernel_distance(a, shifted)
    assert abs(same) < 0.1 * other and other > 0


def test_dcgan_with_ema_exports_and_samples_the_weight_average_not_the_last_generator(faces, tmp_path):
    from impasto.train import checkpoint as ckpt

    out = tmp_path / "ema"
    assert main(_dcgan(faces / "target", out, 5, "--device", "cpu", *SMALL_FOLDER)) == 0
    shipped, meta = files.load(out / "model.safetensors", "dcgan", dtype=torch.float32)
    assert meta["ema"] == 0.9 and meta["diff_augment"] == "color,translation,cutout"
    state = ckpt.load(ckpt.latest(out / "checkpoints"))["models"]
    key = "net.0.weight"
    assert torch.allclose(shipped[f"G.{key}"], state["G_ema"][key].float(), atol=1e-3)  # fp16 on disk
    assert not torch.allclose(state["G_ema"][key], state["G"][key])  # an average, not the last step's weights
    assert torch.allclose(shipped["D.blocks.0.0.weight"], state["D"]["blocks.0.0.weight"].float(), atol=1e-3)


def test_dcgan_refuses_an_unknown_augmentation_or_decay_with_one_line(faces, tmp_path, capsys):
    assert main(_dcgan(faces / "target", tmp_path / "a", 2, "--diff-augment", "color,rotate")) == 2
    err = capsys.readouterr().err
    assert "--diff-augment" in err and "'rotate'" in err and len(err.strip().splitlines()) == 1
    assert main(_dcgan(faces / "target", tmp_path / "b", 2, "--ema", "1")) == 2
    assert "--ema must be in [0, 1)" in capsys.readouterr().err


def test_diff_augment_is_seeded_differentiable_and_each_op_does_what_it_says():
    from impasto.train.augment import color, cutout, diff_augment, parse_policy, translation

    x = torch.rand(4, 3, 16, 16, requires_grad=True)
    policy = parse_policy("color, translation,cutout")
    a = diff_augment(x, policy, torch.Generator().manual_seed(3))
    b = diff_augment(x, policy, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == x.shape
    a.sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0  # the generator still gets gradients
    dot = torch.zeros(8, 1, 16, 16)
    dot[:, :, 8, 8] = 1
    moved = translation(dot, torch.Generator().manual_seed(0))
    assert torch.equal(moved.sum(dim=(1, 2, 3)), torch.ones(8))  # whole pixels: the dot moves, stays one pixel
    assert (moved[:, 0, 8, 8] == 0).any() and all(int(m.nonzero()[0, 1]) in range(6, 11) for m in moved)
    holes = cutout(torch.ones(8, 3, 16, 16), torch.Generator().manual_seed(0))
    zeros = (holes[:, 0] == 0).float().mean(dim=(1, 2))
    assert bool((zeros > 0).all()) and bool((zeros <= 0.25).all())  # an 8x8 square, at most, per image
    grey = torch.full((2, 3, 4, 4), 0.5)
    shifted = color(grey, torch.Generator().manual_seed(0))
    assert not torch.allclose(shifted, grey) and float(shifted.std(dim=(1, 2, 3)).max()) < 1e-6  # flat stays flat
    with pytest.raises(ValueError, match="'rotate'"):
        parse_policy("color,rotate")


def test_the_generator_average_follows_its_formula_through_the_warm_up_and_past_the_cap():
    from impasto.train.dcgan import DCGANOptions, DCGANRecipe
    from impasto.train.loop import Context

    recipe = DCGANRecipe(DCGANOptions(size=32, nz=8, ngf=4, ndf=4, ema=0.3))
    recipe.setup(Context(torch.device("cpu"), None))
    live, avg = recipe.models["G"].net[0].weight, recipe.models["G_ema"].net[0].weight
    expected = live.detach().clone()
    for t in range(6):  # decay (1+t)/(10+t): 0.1, 0.18, 0.25, 0.31 then the cap 0.3
        with torch.no_grad():
            live.add_(1.0)  # an optimizer step's worth of change
        recipe.step = t
        recipe.after_step()
        decay = min(0.3, (1 + t) / (10 + t))
        expected = decay * expected + (1 - decay) * live.detach()
        assert torch.allclose(avg, expected, atol=1e-6), t


def test_resuming_under_other_small_folder_settings_is_refused_with_one_line(faces, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(_dcgan(faces / "target", out, 5, "--device", "cpu", "--ema", "0.9")) == 0
    assert main(_dcgan(faces / "target", out, 10, "--device", "cpu", "--ema", "0.5", "--resume")) == 2
    err = capsys.readouterr().err
    assert "--resume: this run was trained with" in err and len(err.strip().splitlines()) == 1
