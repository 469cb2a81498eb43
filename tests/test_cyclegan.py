"""CycleGAN: shapes and losses, training lowers the cycle loss, exact resume (optimizers + image pools),
translate on files/folders/tiles, refusal of other model kinds, the offline demo data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from impasto.cli import main
from impasto.models import files
from impasto.models.cyclegan import CycleGenerators, ImagePool, PatchDiscriminator, ResnetGenerator, lsgan
from impasto.tiling import forward_tiled
from impasto.train import checkpoint as ckpt
from impasto.train.cyclegan import linear_decay
from impasto.train.loop import read_log


def test_generator_keeps_any_size_in_unit_range_and_discriminator_scores_patches():
    g = ResnetGenerator(ngf=8, n_blocks=2)
    with torch.no_grad():
        y = g(torch.rand(2, 3, 37, 50))
    assert y.shape == (2, 3, 37, 50) and float(y.min()) >= 0 and float(y.max()) <= 1
    scores = PatchDiscriminator()(torch.rand(1, 3, 70, 70))
    assert scores.shape == (1, 1, 6, 6)  # one score per overlapping 70x70 receptive field


def test_cycle_generators_return_translations_reconstructions_and_identities():
    gens = CycleGenerators(ngf=8, n_blocks=1)
    a, b = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    out = gens(a, b)
    assert set(out) == {"fake_a", "fake_b", "rec_a", "rec_b", "idt_a", "idt_b"}
    assert torch.allclose(out["fake_b"], gens.g_ab(a), atol=1e-5)  # batching with b changes nothing
    assert torch.allclose(out["rec_a"], gens.g_ba(gens.g_ab(a)), atol=1e-5)
    assert set(gens(a, b, identity=False)) == {"fake_a", "fake_b", "rec_a", "rec_b"}


def test_generator_files_say_how_they_upsample_and_files_without_the_key_load_as_nearest(tmp_path):
    from impasto.models.cyclegan import load_generators

    def modes(gens: dict) -> set[str]:
        return {m.mode for g in gens.values() for m in g.modules() if isinstance(m, torch.nn.Upsample)}

    bilinear = CycleGenerators(4, 1, "bilinear")
    path = files.save(tmp_path / "b.safetensors", "cyclegan", bilinear.state_dict(),
                      {"ngf": 4, "n_blocks": 1, "upsample": "bilinear"}, dtype=torch.float32)
    gens, _ = load_generators(path)
    assert modes(gens) == {"bilinear"}
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        assert torch.allclose(gens["a2b"](x), bilinear.g_ab.eval()(x), atol=1e-5)
    legacy = files.save(tmp_path / "n.safetensors", "cyclegan", CycleGenerators(4, 1).state_dict(),
                        {"ngf": 4, "n_blocks": 1}, dtype=torch.float32)  # written before the key existed
    assert modes(load_generators(legacy)[0]) == {"nearest"}
    with pytest.raises(ValueError, match="upsample"):
        ResnetGenerator(4, 1, "area")


def test_lsgan_targets_and_linear_decay():
    assert float(lsgan(torch.ones(4), True)) == 0 and float(lsgan(torch.zeros(4), False)) == 0
    assert float(lsgan(torch.zeros(4), True)) == 1
    f = linear_decay(100, 0.5)
    assert f(0) == f(49) == 1.0 and f(75) == pytest.approx(0.5) and f(100) == 0.0


def test_image_pool_mixes_history_and_its_state_round_trips():
    pool = ImagePool(size=3, seed=5)
    for i in range(3):
        assert torch.equal(pool.query(torch.full((1, 3, 2, 2), float(i))), torch.full((1, 3, 2, 2), float(i)))
    saved = pool.state_dict()
    outs = [pool.query(torch.full((1, 3, 2, 2), 10.0 + i)) for i in range(20)]
    assert any(float(o.mean()) < 10 for o in outs)  # older fakes come back
    again = ImagePool(size=3)
    again.load_state_dict(saved)
    assert all(torch.equal(o, again.query(torch.full((1, 3, 2, 2), 10.0 + i))) for i, o in enumerate(outs))


def test_tiled_forward_is_exact_for_pointwise_maps_and_close_for_a_network():
    x = torch.rand(1, 3, 150, 230)
    assert torch.allclose(forward_tiled(lambda t: t * 0.5 + 0.1, x, tile=64, overlap=16), x * 0.5 + 0.1, atol=1e-6)
    conv = torch.nn.Conv2d(3, 3, 3, padding=1)
    with torch.no_grad():
        whole, tiled = conv(x), forward_tiled(conv, x, tile=96, overlap=32)
    assert tiled.shape == whole.shape and float((tiled - whole).abs().mean()) < 0.01


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cg") / "data"
    assert main(["data", "cyclegan-demo", str(root), "--crops", "8", "--size", "48"]) == 0
    (root / "A" / "broken.png").write_bytes(b"\x89PNG not really")  # skipped with a count
    return root


def _train(data: Path, out: Path, steps: int, *extra: str) -> list[str]:
    return ["train", "cyclegan", "--a-dir", str(data / "A"), "--b-dir", str(data / "B"), "--size", "32",
            "--ngf", "8", "--blocks", "1", "--batch", "2", "--steps", str(steps), "--save-every", "3",
            "--log-every", "1", "--pool", "2", "--lr", "1e-3", "--out", str(out), "--quiet", "--device", "cpu", *extra]


def test_demo_data_is_unpaired_with_known_targets(demo_data):
    assert len(list((demo_data / "A_val").glob("*.png"))) == len(list((demo_data / "A_val_target").glob("*.png")))
    assert len(list((demo_data / "B").glob("*.png"))) == 8


@pytest.fixture(scope="module")
def tiny_run(demo_data) -> Path:
    out = demo_data.parent / "run"
    assert main(_train(demo_data, out, 24)) == 0
    return out


def test_training_lowers_the_cycle_loss_and_writes_samples_plot_model(tiny_run):
    rows = [r for r in read_log(tiny_run / "log.jsonl") if "val" not in r]
    assert sum(r["cycle"] for r in rows[-4:]) < sum(r["cycle"] for r in rows[:4])
    assert any("val" in r and "cycle_a" in r["val"] for r in read_log(tiny_run / "log.jsonl"))
    assert (tiny_run / "loss.png").stat().st_size > 0 and list((tiny_run / "samples").glob("*.png"))
    kind, meta = files.read_meta(tiny_run / "model.safetensors")
    assert kind == "cyclegan" and meta["steps"] == 24 and meta["ngf"] == 8 and meta["upsample"] == "nearest"


@pytest.mark.parametrize("recipe", [(), ("--diff-augment", "translation,cutout"), ("--ema", "0.9")],
                         ids=["plain", "diffaugment", "ema"])
def test_resume_restores_optimizers_and_pools_exactly(demo_data, tmp_path, recipe):
    straight, resumed = tmp_path / "s", tmp_path / "r"
    assert main(_train(demo_data, straight, 6, "--decay-from", "1", *recipe)) == 0
    assert main(_train(demo_data, resumed, 3, "--decay-from", "1", *recipe)) == 0
    state = ckpt.load(ckpt.latest(resumed / "checkpoints"))
    assert len(state["extra"]["pools"]["A"]["images"]) == 2 and "G" in state["optimizers"]
    assert main(_train(demo_data, resumed, 6, "--decay-from", "1", "--resume", *recipe)) == 0
    a, _ = files.load(straight / "model.safetensors", "cyclegan")
    b, _ = files.load(resumed / "model.safetensors", "cyclegan")
    assert all(torch.equal(a[k], b[k]) for k in a)
    pa = ckpt.load(ckpt.latest(straight / "checkpoints"))["extra"]["pools"]["B"]["images"]
    pb = ckpt.load(ckpt.latest(resumed / "checkpoints"))["extra"]["pools"]["B"]["images"]
    assert all(torch.equal(x, y) for x, y in zip(pa, pb, strict=True))


def test_translate_file_and_folder_in_both_directions(tiny_run, demo_data, tmp_path, content_path, capsys):
    out = tmp_path / "gg.png"
    assert main(["translate", str(content_path), "--model", str(tiny_run), "--tile", "256", "-o", str(out),
                 "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    from impasto.io import load_image

    assert load_image(out).shape == load_image(content_path).shape and info["direction"] == "a2b"
    folder_out = tmp_path / "folder"
    assert main(["translate", str(demo_data / "B"), "--model", str(tiny_run / "model.safetensors"),
                 "--direction", "b2a", "-o", str(folder_out), "--quiet"]) == 0
    assert len(list(folder_out.glob("*_b2a.png"))) == 8


def test_translate_size_sets_the_long_side_of_the_output(tiny_run, tmp_path, content_path, capsys):
    from impasto.io import load_image

    out = tmp_path / "small.png"
    assert main(["translate", str(content_path), "--model", str(tiny_run), "--size", "96", "-o", str(out),
                 "--json"]) == 0
    h, w = load_image(out).shape[-2:]
    assert max(h, w) == 96 and json.loads(capsys.readouterr().out)["size"] == [h, w]
    with pytest.raises(SystemExit) as refused:  # argparse: one line, exit 2
        main(["translate", str(content_path), "--model", str(tiny_run), "--size", "0", "-o", str(out)])
    assert refused.value.code == 2


def test_shift_averaging_cancels_a_pattern_locked_to_the_generators_grid_and_keeps_the_image():
    from impasto.translate import GRID, _shift_average

    def mosaic_painter(x: torch.Tensor) -> torch.Tensor:  # the image plus a mosaic fixed to a 4 px grid
        h, w = x.shape[-2:]
        i, j = torch.arange(h)[:, None] % GRID, torch.arange(w)[None, :] % GRID
        return x + 0.1 * ((i * 3 + j * 5) % 7).float()

    x = torch.rand(1, 3, 40, 52)
    assert torch.equal(_shift_average(mosaic_painter, x, 1), mosaic_painter(x))
    averaged = _shift_average(mosaic_painter, x, GRID) - x
    inside = averaged[..., GRID:, GRID:]  # borders see reflected pixels
    assert float(inside.std()) < 1e-5 < float((mosaic_painter(x) - x).std())


def test_translate_averages_grid_phases_by_default_and_refuses_other_shift_counts(tiny_run, tmp_path,
                                                                                  content_path, capsys):
    from impasto.io import load_image

    one, four = tmp_path / "one.png", tmp_path / "four.png"
    assert main(["translate", str(content_path), "--model", str(tiny_run), "--size", "64", "-o", str(four),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["shifts"] == 4
    assert main(["translate", str(content_path), "--model", str(tiny_run), "--size", "64", "-o", str(one),
                 "--shifts", "1", "--quiet"]) == 0
    assert not torch.equal(load_image(one), load_image(four))
    for bad in ("0", "5"):
        with pytest.raises(SystemExit) as refused:
            main(["translate", str(content_path), "--model", str(tiny_run), "--shifts", bad, "-o", str(one)])
        assert refused.value.code == 2


def test_translate_refuses_other_models_and_missing_files(tmp_path, content_path, capsys):
    from impasto import bundled

    assert main(["translate", str(content_path), "--model", str(bundled.model("fast4")), "-o",
                 str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "not a CycleGAN" in err and err.count("\n") == 1
    assert main(["translate", str(content_path), "--model", str(tmp_path / "none"), "-o", str(tmp_path / "x.png")]) == 2
    assert not (tmp_path / "x.png").exists()


def test_diff_augment_reaches_the_discriminators_and_is_recorded(demo_data, tmp_path, capsys):
    plain, augmented = tmp_path / "p", tmp_path / "a"
    assert main(_train(demo_data, plain, 3)) == 0
    assert main(_train(demo_data, augmented, 3, "--diff-augment", "translation,cutout")) == 0
    d_plain = ckpt.load(ckpt.latest(plain / "checkpoints"))["models"]["D_b"]
    d_aug = ckpt.load(ckpt.latest(augmented / "checkpoints"))["models"]["D_b"]
    assert any(not torch.equal(d_plain[k], d_aug[k]) for k in d_plain)  # same seed, other inputs
    assert files.read_meta(augmented / "model.safetensors")[1]["diff_augment"] == "translation,cutout"
    assert files.read_meta(plain / "model.safetensors")[1]["diff_augment"] == ""
    assert main(_train(demo_data, tmp_path / "bad", 1, "--diff-augment", "flip")) == 2
    assert "--diff-augment: unknown augmentation 'flip'" in capsys.readouterr().err
    assert main(_train(demo_data, plain, 6, "--diff-augment", "translation", "--resume")) == 2
    recorded = "{'diff_augment': '', 'ema': 0.0, 'upsample': 'nearest'}"
    assert f"--resume: this run was trained with {recorded}" in capsys.readouterr().err


def test_ema_exports_validates_and_resumes_the_generators_average_not_the_last_step(demo_data, tmp_path, capsys):
    out = tmp_path / "ema"
    assert main(_train(demo_data, out, 4, "--ema", "0.9")) == 0
    shipped, meta = files.load(out / "model.safetensors", "cyclegan", dtype=torch.float32)
    assert meta["ema"] == 0.9
    state = ckpt.load(ckpt.latest(out / "checkpoints"))["models"]
    key = "g_ab.net.1.weight"
    assert torch.allclose(shipped[key], state["G_ema"][key].float(), atol=1e-3)  # fp16 on disk
    assert not torch.allclose(state["G_ema"][key], state["G"][key])  # an average, not the last step's weights
    assert main(_train(demo_data, out, 6, "--resume")) == 2  # the average cannot be dropped halfway
    assert "'ema': 0.9, 'upsample': 'nearest'}, not {'diff_augment': '', 'ema': 0.0, " in capsys.readouterr().err
    plain = tmp_path / "plain"
    assert main(_train(demo_data, plain, 3)) == 0
    assert main(_train(demo_data, plain, 6, "--ema", "0.9", "--resume")) == 2  # nor added halfway
    assert "'ema': 0.0, 'upsample': 'nearest'}, not {'diff_augment': '', 'ema': 0.9, " in capsys.readouterr().err
    assert main(_train(demo_data, tmp_path / "bad", 1, "--ema", "1")) == 2
    assert "--ema must be in [0, 1)" in capsys.readouterr().err
