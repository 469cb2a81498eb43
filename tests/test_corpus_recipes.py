"""The corpus recipes (#24) on a tiny generated corpus: files chosen by split and name prefix (and only
those are read), CycleGAN on two selected domains trains and resumes, fine-tuning freezes the first
discriminator blocks while the scratch baseline trains them, KID with its standard error, and a bundled
model name that does not exist."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from impasto.cli import main
from impasto.io import save_image
from impasto.models import files
from impasto.train import checkpoint as ckpt
from impasto.train.loop import read_log

#: (folder, name prefix, split of each file); files of other prefixes and of the 'test' split are garbage
#: bytes, so a trainer that opened one would count it as skipped
LAYOUT = {("photos", "land_"): ["train"] * 4 + ["val", "test"],
          ("paintings", "mon_"): ["train"] * 4 + ["val", "test"]}
OTHERS = {"photos": "city_", "paintings": "wiki_"}


def _image(seed: int, tint: tuple[float, float, float]) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(0, 1, 40)[None, None, :, None].expand(1, 3, 40, 40)
    return (0.6 * ramp + 0.4 * torch.rand(1, 3, 40, 40, generator=gen)) * torch.tensor(tint)[None, :, None, None]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    rows = ["file\tfolder\tsplit"]
    for (folder, prefix), splits in LAYOUT.items():
        (root / folder).mkdir()
        tint = (1.0, 0.9, 0.8) if folder == "photos" else (0.5, 0.7, 1.0)
        for i, split in enumerate(splits):
            name = f"{prefix}{i:03d}.png"
            if split == "test":
                (root / folder / name).write_bytes(b"held out: a trainer must never open this")
            else:
                save_image(_image(i, tint), root / folder / name)
            rows.append(f"{name}\t{folder}\t{split}")
        for i in range(2):
            name = f"{OTHERS[folder]}{i:03d}.png"
            (root / folder / name).write_bytes(b"another domain: not an image")
            rows.append(f"{name}\t{folder}\ttrain")
    (root / "split.tsv").write_text("\n".join(rows) + "\n")
    return root


def test_selection_by_split_and_prefix_opens_only_the_chosen_files(corpus, monkeypatch):
    from impasto.train import data

    opened: list[str] = []
    real_open = data.Image.open

    def recording_open(path, *a, **k):
        opened.append(Path(path).name)
        return real_open(path, *a, **k)

    monkeypatch.setattr(data.Image, "open", recording_open)
    sel = data.selection(corpus / "split.tsv", "land_")
    train, skipped = data.select_images(corpus / "photos", sel, "train", name="--data-dir")
    assert [p.name for p in train] == [f"land_{i:03d}.png" for i in range(4)] and skipped == 0
    assert sorted(opened) == [p.name for p in train]  # no other domain, no held-out file was read
    val, _ = data.select_images(corpus / "photos", sel, "val")
    assert [p.name for p in val] == ["land_004.png"]
    assert sel.describe("train") == "'train' rows of split.tsv; names land_*"


def test_glob_and_limit_pick_a_fixed_subset(corpus):
    from impasto.train.data import select_images, selection

    sel = selection(corpus / "split.tsv", None, "mon_00[0-3].png", limit=2)
    first, _ = select_images(corpus / "paintings", sel, "train", seed=3)
    again, _ = select_images(corpus / "paintings", sel, "train", seed=3)
    assert len(first) == 2 and first == again and all(p.name.startswith("mon_") for p in first)
    assert select_images(corpus / "paintings", selection(corpus / "split.tsv", "nobody_"), "val",
                         required=False) == ([], 0)


def _cyclegan(corpus: Path, out: Path, steps: int, *extra: str) -> list[str]:
    return ["train", "cyclegan", "--a-dir", str(corpus / "photos"), "--b-dir", str(corpus / "paintings"),
            "--split-file", str(corpus / "split.tsv"), "--a-prefix", "land_", "--b-prefix", "mon_",
            "--names", "photo,monet", "--size", "32", "--ngf", "8", "--blocks", "1", "--batch", "2", "--pool", "2",
            "--lr", "1e-3", "--steps", str(steps), "--save-every", "10", "--log-every", "1", "--device", "cpu",
            "--out", str(out), "--quiet", *extra]


def test_cyclegan_on_selected_domains_trains_finitely_and_resumes(corpus, tmp_path, capsys):
    out = tmp_path / "cg"
    assert main(_cyclegan(corpus, out, 4, "--json")) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["skipped_files"] == 0  # neither garbage domain nor held-out rows were opened
    assert "A: 4 files" in record["trained_on"] and "B: 4 files" in record["trained_on"]
    rows = [r for r in read_log(out / "log.jsonl") if "val" not in r]
    assert all(math.isfinite(r[k]) for r in rows for k in ("cycle", "adv_g", "d_a", "d_b"))
    assert rows[0]["total_g"] != rows[-1]["total_g"]
    assert main(_cyclegan(corpus, out, 6, "--resume")) == 0
    kind, meta = files.read_meta(out / "model.safetensors")
    assert kind == "cyclegan" and meta["steps"] == 6 and meta["names"] == ["photo", "monet"]
    assert "names land_*" in meta["data"] and [r["step"] for r in read_log(out / "log.jsonl")
                                               if "val" not in r][-1] == 6


def _dcgan(corpus: Path, folder: str, prefix: str, out: Path, *extra: str) -> list[str]:
    return ["train", "dcgan", "--data-dir", str(corpus / folder), "--split-file", str(corpus / "split.tsv"),
            "--prefix", prefix, "--size", "32", "--ngf", "8", "--ndf", "8", "--nz", "16", "--batch", "4",
            "--save-every", "1", "--keep", "5", "--log-every", "1", "--device", "cpu", "--out", str(out),
            "--quiet", *extra]


def _disc(run: Path, step: int) -> dict[str, torch.Tensor]:
    return ckpt.load(run / "checkpoints" / f"step_{step:08d}.pt")["models"]["D"]


def test_finetune_freezes_first_discriminator_blocks_and_scratch_trains_them(corpus, tmp_path, capsys):
    pre, ft, scratch = tmp_path / "pre", tmp_path / "ft", tmp_path / "scratch"
    assert main(_dcgan(corpus, "photos", "land_", pre, "--steps", "2")) == 0
    assert main(_dcgan(corpus, "paintings", "mon_", ft, "--steps", "2", "--finetune-from", str(pre),
                       "--freeze-d", "2", "--json")) == 0
    frozen = json.loads(capsys.readouterr().out)["frozen_parameters"]
    assert main(_dcgan(corpus, "paintings", "mon_", scratch, "--steps", "2", "--json")) == 0
    assert json.loads(capsys.readouterr().out)["frozen_parameters"] == []
    before, _ = files.load(pre / "model.safetensors", "dcgan", dtype=torch.float32)
    assert frozen == [n for n in _disc(ft, 2) if n.startswith(("blocks.0.", "blocks.1.")) and "running" not in n
                      and "num_batches" not in n]
    for name in frozen:  # bit-identical to the pretrained weights after every step
        assert torch.equal(_disc(ft, 1)[name], _disc(ft, 2)[name]), name
        assert torch.equal(_disc(ft, 2)[name].half().float(), before[f"D.{name}"]), name
    assert not torch.equal(_disc(ft, 1)["blocks.2.0.weight"], _disc(ft, 2)["blocks.2.0.weight"])
    assert not torch.equal(_disc(scratch, 1)["blocks.0.0.weight"], _disc(scratch, 2)["blocks.0.0.weight"])
    assert "names mon_*" in files.read_meta(ft / "model.safetensors")[1]["data"]


def test_kid_standard_error_separates_same_from_shifted_sets():
    from impasto.metrics import kernel_distance, kernel_distance_se

    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(200, 16, generator=gen), torch.randn(200, 16, generator=gen)
    same, same_se = kernel_distance_se(a, b)
    shifted, shifted_se = kernel_distance_se(a, b + 0.5)
    identical, _ = kernel_distance_se(a, a)
    assert abs(same) < 4 * same_se and shifted > 4 * shifted_se > 0
    assert abs(identical) < 0.1 * shifted
    assert same == pytest.approx(kernel_distance(a.double(), b.double()), rel=1e-9, abs=1e-12)


def test_kid_standard_error_is_the_delete_one_jackknife():
    from impasto.metrics import kernel_distance, kernel_distance_se

    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(6, 4, generator=gen).double(), torch.randn(5, 4, generator=gen).double() + 0.3

    def spread(values: list[float]) -> float:
        mean = sum(values) / len(values)
        return (len(values) - 1) / len(values) * sum((v - mean) ** 2 for v in values)

    without_a = [kernel_distance(torch.cat([a[:i], a[i + 1:]]), b) for i in range(len(a))]
    without_b = [kernel_distance(a, torch.cat([b[:i], b[i + 1:]])) for i in range(len(b))]
    _, se = kernel_distance_se(a, b)
    assert se == pytest.approx(math.sqrt(spread(without_a) + spread(without_b)), rel=1e-9)
    with pytest.raises(ValueError):
        kernel_distance_se(a[:2], b)


def test_translate_with_an_unknown_bundled_name_fails_in_one_line(tmp_path, content_path, capsys, monkeypatch):
    from impasto import bundled
    from impasto.translate import resolve_model

    monkeypatch.chdir(tmp_path)
    assert main(["translate", str(content_path), "--model", "monet_not_shipped", "-o", "x.png"]) == 2
    err = capsys.readouterr().err
    assert "monet_not_shipped" in err and "bundled" in err and err.count("\n") == 1
    assert not (tmp_path / "x.png").exists()
    assert resolve_model("fast4") == bundled.model("fast4")  # a bundled name resolves to its file
