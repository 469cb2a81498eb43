"""Hostile input (issue #20): tiny and thin photos, bad files in a batch, a full disk, damaged checkpoints,
lying model metadata, NaN models, decompression bombs and wide-gamut photos. Each is one line on stderr
and exit 2 (or simply works), never a traceback, a half-written file or an all-black picture."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import math
import os
import resource
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from impasto import bundled, stylizer
from impasto.cli import main
from impasto.errors import ImpastoError, InputError, ModelFileError, WriteError
from impasto.io import load_image, save_image
from impasto.models import adain, cyclegan, dcgan, files, transformer, vae
from impasto.train import checkpoint as ckpt

RNG = np.random.default_rng(20)
MISSING = object()


def _png(path: Path, w: int, h: int, **save: object) -> Path:
    Image.fromarray(RNG.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path, **save)
    return path


def _one_line(err: str) -> str:
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
    return lines[0]


@pytest.fixture(scope="module")
def fast_model(tmp_path_factory) -> Path:
    """An untrained, very small fast-style network: inference shapes, not looks, are under test."""
    path = tmp_path_factory.mktemp("fast") / "f.safetensors"
    return transformer.save_model(path, transformer.TransformerNet(1, 4, 1),
                                  {"n_styles": 1, "width": 4, "n_residual": 1, "styles": ["x"]})


@pytest.fixture(scope="module")
def cyclegan_model(tmp_path_factory) -> Path:
    return files.save(tmp_path_factory.mktemp("cg") / "c.safetensors", cyclegan.KIND,
                      cyclegan.CycleGenerators(4, 1).state_dict(), {"ngf": 4, "n_blocks": 1, "names": ["A", "B"]})


# ---- 7: tiny and thin photos ---------------------------------------------------------------------------

SHAPES = [(1, 1), (4, 4), (8000, 1), (3, 2000)]  # (width, height)


@pytest.mark.parametrize("w,h", SHAPES)
def test_fast_pads_tiny_and_thin_photos_and_gives_their_size_back(tmp_path, fast_model, w, h):
    photo = _png(tmp_path / "p.png", w, h)
    out = tmp_path / "o.png"
    assert main(["stylize", str(photo), "--method", "fast", "--model", str(fast_model), "-o", str(out), "-q"]) == 0
    with Image.open(out) as img:
        assert img.size == (w, h)


@pytest.mark.parametrize("w,h", SHAPES)
def test_adain_pads_tiny_and_thin_photos_and_paintings(tmp_path, w, h):
    photo, painting = _png(tmp_path / "p.png", w, h), _png(tmp_path / "s.png", h, w)  # the painting thin too
    out = tmp_path / "o.png"
    assert main(["stylize", str(photo), "--method", "adain", "-s", str(painting), "-o", str(out), "-q"]) == 0
    with Image.open(out) as img:
        assert img.size == (w, h)


@pytest.mark.parametrize("w,h", SHAPES)
def test_translate_pads_tiny_and_thin_photos(tmp_path, cyclegan_model, w, h):
    photo, out = _png(tmp_path / "p.png", w, h), tmp_path / "o.png"
    assert main(["translate", str(photo), "--model", str(cyclegan_model), "-o", str(out), "-q", "--device", "cpu"]) == 0
    with Image.open(out) as img:
        assert img.size == (w, h)


def test_gatys_scales_a_tiny_photo_up_and_repeats_a_thin_painting(tmp_path):
    photo, painting, out = _png(tmp_path / "p.png", 1, 1), _png(tmp_path / "s.png", 3, 2000), tmp_path / "o.png"
    assert main(["stylize", str(photo), "-s", str(painting), "--size", "32", "--iterations", "1", "-o", str(out),
                 "-q"]) == 0
    with Image.open(out) as img:
        assert img.size == (32, 32)


@pytest.mark.parametrize("w,h", [(8000, 1), (3, 2000)])
def test_gatys_refuses_a_photo_too_thin_for_vgg_in_one_line(tmp_path, capsys, w, h):
    photo, painting = _png(tmp_path / "p.png", w, h), _png(tmp_path / "s.png", 32, 32)
    code = main(["stylize", str(photo), "-s", str(painting), "--size", "64", "-o", str(tmp_path / "o.png"), "-q"])
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and "16 px" in line and "--method fast or adain" in line
    assert not (tmp_path / "o.png").exists()


def test_gatys_python_api_refuses_a_size_vgg_cannot_see(small_pair):
    content, style = small_pair
    for size in (1, 8):  # GatysOptions built directly skips make_options' range check
        with pytest.raises(InputError, match="raise --size"):
            stylizer.stylize(stylizer.StylizeRequest(content, [style], stylizer.GatysOptions(size=size)))
    with pytest.raises(InputError, match="16 px"):  # 16 on the long side leaves the short side below 16
        stylizer.stylize(stylizer.StylizeRequest(content[..., :40, :], [style], stylizer.GatysOptions(size=16)))


def test_check_content_size_is_one_rule_for_every_front_end():
    check = stylizer.check_content_size
    for shape in [(1, 1), (1, 64000), (2000, 3)]:  # (height, width): the feed-forward methods pad
        check(shape, "fast")
        check(torch.zeros(1, 3, *shape), "adain")
    check((1, 1), "gatys")  # scaled up to --size
    check((300, 451), stylizer.GatysOptions(size=24))
    with pytest.raises(InputError):
        check((2000, 3), "gatys")
    with pytest.raises(InputError):
        check((300, 451), stylizer.GatysOptions(size=16))


# ---- 8: a folder batch goes on past bad files -------------------------------------------------------------

def test_folder_batch_skips_bad_photos_reports_each_and_exits_2_at_the_end(tmp_path, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    _png(src / "a_thin.png", 3, 400)  # gatys refuses it
    (src / "b_broken.png").write_bytes(b"\x89PNG not really")
    _png(src / "c_good.png", 40, 30)
    painting = _png(tmp_path / "s.png", 32, 32)
    args = ["stylize", str(src), "-s", str(painting), "--size", "32", "--iterations", "1", "-o", str(out), "--json",
            "-q"]
    assert main(args) == 2
    captured = capsys.readouterr()
    record = json.loads(captured.out)
    assert record["written"] == [str(out / "c_good_stylized.png")]
    assert sorted(Path(f["input"]).name for f in record["failed"]) == ["a_thin.png", "b_broken.png"]
    skipped = [x for x in captured.err.splitlines() if x.startswith("impasto: skipped")]
    assert len(skipped) == 2 and "Traceback" not in captured.err
    assert main(args) == 2  # a re-run does not stop at the same file either: the good one is kept
    again = json.loads(capsys.readouterr().out)
    assert again["already_done"] == record["written"] and len(again["failed"]) == 2


def test_folder_batch_goes_on_after_an_unexpected_error(tmp_path, fast_model, monkeypatch, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for name, w in (("a", 20), ("b", 9), ("c", 24)):
        _png(src / f"{name}.png", w, 16)
    real = stylizer._RUNNERS["fast"]

    def flaky(request, callback, preview_every):
        if request.content.shape[-1] == 9:
            raise RuntimeError("something no one foresaw\nsecond line")
        return real(request, callback, preview_every)

    monkeypatch.setitem(stylizer._RUNNERS, "fast", flaky)
    assert main(["stylize", str(src), "--method", "fast", "--model", str(fast_model), "-o", str(out), "-q"]) == 2
    assert sorted(p.name for p in out.iterdir()) == [".impasto_batch.json", "a_stylized.png", "c_stylized.png"]
    assert "skipped" in _one_line(capsys.readouterr().err)


def test_folder_batch_inputs_sharing_a_stem_get_outputs_of_their_own(tmp_path, fast_model, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    _png(src / "a.png", 20, 16)
    _png(src / "a.jpg", 24, 16)
    _png(src / "b.png", 16, 16)
    args = ["stylize", str(src), "--method", "fast", "--model", str(fast_model), "-o", str(out), "--json", "-q"]
    assert main(args) == 0
    record = json.loads(capsys.readouterr().out)
    names = ["a.jpg_stylized.png", "a.png_stylized.png", "b_stylized.png"]
    assert record["written"] == [str(out / n) for n in names] and record["already_done"] == []
    assert sorted(p.name for p in out.iterdir()) == [".impasto_batch.json", *names]
    assert main(args) == 0  # a resume finds the same names
    assert json.loads(capsys.readouterr().out)["already_done"] == record["written"]
    # a.png.png would be written as a.png_stylized.png too: refused before any work, one line naming both
    _png(src / "a.png.png", 16, 16)
    fresh = tmp_path / "fresh"
    assert main([*args[:-3], str(fresh), "-q"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert str(src / "a.png") in line and str(src / "a.png.png") in line and not fresh.exists()
    from impasto.cli.common import _output_names

    with pytest.raises(InputError, match="would both be written"):  # one file on a case-insensitive disk
        _output_names([Path("A.png.png"), Path("a.jpg"), Path("a.png")], "_stylized")


def test_folder_batch_remakes_the_output_of_a_replaced_input(tmp_path, fast_model, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    _png(src / "a.png", 20, 16)
    _png(src / "b.png", 16, 16)
    args = ["stylize", str(src), "--method", "fast", "--model", str(fast_model), "-o", str(out), "--json", "-q"]
    assert main(args) == 0
    capsys.readouterr()
    before = (out / "a_stylized.png").read_bytes()
    _png(src / "a.png", 24, 16)  # another photo under the same name
    assert main(args) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["written"] == [str(out / "a_stylized.png")]
    assert again["already_done"] == [str(out / "b_stylized.png")]
    assert (out / "a_stylized.png").read_bytes() != before
    assert main(args) == 0 and json.loads(capsys.readouterr().out)["written"] == []


def test_folder_batch_accepts_a_record_of_the_older_layout_and_remakes_its_outputs(tmp_path, fast_model, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    _png(src / "a.png", 20, 16)
    args = ["stylize", str(src), "--method", "fast", "--model", str(fast_model), "-o", str(out), "--json", "-q"]
    assert main(args) == 0
    capsys.readouterr()
    record = out / ".impasto_batch.json"
    settings = json.loads(record.read_text())["settings"]
    record.write_text(json.dumps(settings))  # what an older impasto wrote: the settings alone, no digests
    assert main(args) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["written"] == [str(out / "a_stylized.png")] and again["already_done"] == []
    digest = hashlib.sha256((src / "a.png").read_bytes()).hexdigest()
    assert json.loads(record.read_text()) == {"settings": settings, "inputs": {"a_stylized.png": digest}}


# ---- 11: a full disk ----------------------------------------------------------------------------------------

def _failing_save(code: int):
    def save(self, fp, format=None, **params):
        Path(fp).write_bytes(b"\x89PNG half an image")
        raise OSError(code, os.strerror(code), str(fp))
    return save


@pytest.mark.parametrize("code,words", [(errno.ENOSPC, "no space left"), (errno.EDQUOT, "quota"),
                                        (errno.EROFS, "read-only"), (errno.EACCES, "permission denied")])
def test_a_failed_image_write_is_one_line_and_leaves_no_file(tmp_path, monkeypatch, code, words):
    monkeypatch.setattr(Image.Image, "save", _failing_save(code))
    with pytest.raises(WriteError, match=words):
        save_image(torch.rand(1, 3, 8, 8), tmp_path / "o.png")
    assert list(tmp_path.iterdir()) == []  # neither the output nor the temp file


def test_stylize_on_a_full_disk_exits_2_with_one_line(tmp_path, fast_model, monkeypatch, capsys):
    photo = _png(tmp_path / "p.png", 16, 16)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    monkeypatch.setattr(Image.Image, "save", _failing_save(errno.ENOSPC))
    code = main(["stylize", str(photo), "--method", "fast", "--model", str(fast_model), "-o", str(out_dir / "o.png"),
                 "-q"])
    assert code == 2 and "no space left on device" in _one_line(capsys.readouterr().err)
    assert list(out_dir.iterdir()) == []


def test_png_to_a_full_stdout_exits_2_with_one_line(tmp_path, fast_model, monkeypatch, capsys):
    class Full(io.BytesIO):
        def write(self, data: bytes) -> int:  # type: ignore[override]
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    class Stdout:
        buffer = Full()

        def flush(self) -> None:
            return None

    photo = _png(tmp_path / "p.png", 16, 16)
    monkeypatch.setattr("sys.stdout", Stdout())
    assert main(["stylize", str(photo), "--method", "fast", "--model", str(fast_model), "-o", "-", "-q"]) == 2
    assert "no space left on device" in _one_line(capsys.readouterr().err)


def test_model_export_on_a_full_disk_is_a_write_error_and_leaves_no_file(tmp_path, monkeypatch):
    def full(self: Path, data: bytes) -> int:
        with open(self, "wb") as fh:
            fh.write(data[:10])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(WriteError, match="no space left"):
        files.save(tmp_path / "m.safetensors", "fast-style", {"w": torch.zeros(4)}, {})
    assert list(tmp_path.iterdir()) == []


TRAIN = ["train", "fast-style", "--size", "32", "--style-size", "48", "--batch", "2", "--width", "4",
         "--precision", "fp32", "--device", "cpu", "--log-every", "1", "--save-every", "1", "--quiet"]


@pytest.fixture()
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, path in bundled.photos().items():
        (folder / f"{name}.jpg").write_bytes(path.read_bytes())
    return folder


def _train(photos: Path, out: Path, steps: int, *extra: str) -> list[str]:
    return [*TRAIN, "-s", str(bundled.style("picabia_udnie")), "--content-dir", str(photos), "--steps", str(steps),
            "--out", str(out), *extra]


def test_training_on_a_full_disk_exits_2_with_one_line_and_no_partial_checkpoint(tmp_path, photos, monkeypatch,
                                                                                  capsys):
    class FullDisk(io.FileIO):
        def write(self, data) -> int:  # type: ignore[override]
            super().write(bytes(data)[:16])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(ckpt, "open", lambda path, mode="r": FullDisk(path, "wb"), raising=False)
    assert main(_train(photos, tmp_path / "m.safetensors", 1)) == 2
    assert "no space left on device" in _one_line(capsys.readouterr().err)
    assert list((tmp_path / "m_run" / "checkpoints").iterdir()) == []
    assert not (tmp_path / "m.safetensors").exists()


def test_a_training_log_line_on_a_full_disk_is_a_write_error(tmp_path, monkeypatch):
    from impasto.train import loop

    def full(path, mode="r", *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(loop, "open", full, raising=False)
    with pytest.raises(WriteError, match="no space left on device; training stopped"):
        loop._append_log(tmp_path / "log.jsonl", {"step": 1})


# ---- 12: damaged checkpoints ------------------------------------------------------------------------------

def test_resume_falls_back_to_the_newest_intact_checkpoint(tmp_path, photos, capsys):
    out = tmp_path / "m.safetensors"
    assert main(_train(photos, out, 2)) == 0
    ckpts = tmp_path / "m_run" / "checkpoints"
    (ckpts / "step_00000002.pt").write_bytes(b"")  # a save that a full disk cut short
    capsys.readouterr()
    assert main(_train(photos, out, 3, "--resume", "--json")) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["resumed_from"] == 1
    warning = _one_line(captured.err)
    assert "step_00000001.pt" in warning and "step_00000002.pt: empty file" in warning


def test_resume_with_no_intact_checkpoint_is_one_line_without_unsafe_advice(tmp_path, photos, capsys):
    out = tmp_path / "m.safetensors"
    assert main(_train(photos, out, 2)) == 0
    ckpts = tmp_path / "m_run" / "checkpoints"
    (ckpts / "step_00000001.pt").write_bytes(RNG.bytes(4000))
    (ckpts / "step_00000002.pt").write_bytes(b"")
    capsys.readouterr()
    assert main(_train(photos, out, 3, "--resume")) == 2
    line = _one_line(capsys.readouterr().err)
    assert "no intact checkpoint" in line and "empty file" in line and "corrupt" in line
    assert "weights_only" not in line


@pytest.mark.parametrize("data,words", [(b"", "empty file"), (RNG.bytes(3000), "corrupt")])
def test_an_unreadable_checkpoint_is_named_in_words_not_torchs(tmp_path, data, words):
    path = tmp_path / "step_00000001.pt"
    path.write_bytes(data)
    with pytest.raises(ModelFileError, match=words) as info:
        ckpt.load(path)
    assert "weights_only" not in str(info.value) and "EOFError" not in str(info.value)


# ---- 13: model metadata is checked before a network is built --------------------------------------------

def _kinds() -> dict[str, tuple[str, object, object, dict[str, object]]]:
    """kind -> (file kind, loader, tensors of a small valid network, its metadata)."""
    dec = adain.SkipDecoder(4)
    return {
        "fast": (transformer.KIND, transformer.load_model, lambda: transformer.TransformerNet(1, 4, 1).state_dict(),
                 {"n_styles": 1, "width": 4, "n_residual": 1}),
        "cyclegan": (cyclegan.KIND, cyclegan.load_generators, lambda: cyclegan.CycleGenerators(4, 1).state_dict(),
                     {"ngf": 4, "n_blocks": 1}),
        "dcgan": (dcgan.KIND, dcgan.load_generator, lambda: files.flat({"G": dcgan.Generator(32, 8, 4)}),
                  {"size": 32, "nz": 8, "ngf": 4}),
        "vae": (vae.KIND, vae.load_vae, lambda: files.flat({"vae": vae.ConvVAE(32, 8, 4)}),
                {"size": 32, "zdim": 8, "base": 4}),
        "adain": (adain.KIND, adain.load_decoder, dec.state_dict, {"backbone": "vgg16-keras-offline",
                                                                   **adain.decoder_meta(dec)}),
    }


KINDS = _kinds()


def _model(tmp_path: Path, kind: str, dtype: torch.dtype = torch.float16, tensors=None, **meta: object) -> Path:
    file_kind, _, state, good = KINDS[kind]
    merged = {k: v for k, v in {**good, **meta}.items() if v is not MISSING}
    return files.save(tmp_path / f"{kind}.safetensors", file_kind, tensors or state(), merged, dtype=dtype)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_small_valid_models_of_every_kind_still_load(tmp_path, kind):
    _, loader, _, _ = KINDS[kind]
    net, meta = loader(_model(tmp_path, kind))
    assert meta and net is not None


BAD_META = [("fast", "width", MISSING), ("fast", "width", [4]), ("fast", "width", -4), ("fast", "n_styles", "two"),
            ("fast", "n_residual", 20_000), ("cyclegan", "ngf", MISSING), ("cyclegan", "n_blocks", -1),
            ("cyclegan", "names", ["only one"]), ("cyclegan", "upsample", "bicubic"), ("cyclegan", "upsample", [1]),
            ("dcgan", "nz", [8]), ("dcgan", "size", 48), ("dcgan", "ngf", -4),
            ("vae", "zdim", MISSING), ("vae", "base", 4.5), ("vae", "size", 7), ("adain", "slim", -1),
            ("adain", "skips", ["relu9_9"] * 200_000), ("adain", "arch", ["skip"] * 100_000),
            ("adain", "backbone", "x" * 1_000_000)]


@pytest.mark.parametrize("kind,key,value", BAD_META, ids=[f"{k}-{key}" for k, key, _ in BAD_META])
def test_bad_metadata_is_refused_in_one_short_line_for_every_kind(tmp_path, kind, key, value):
    _, loader, _, _ = KINDS[kind]
    path = _model(tmp_path, kind, **{key: value})
    with pytest.raises(ModelFileError) as info:
        loader(path)
    message = str(info.value)
    assert len(message) < 400 and "\n" not in message


HUGE = [("fast", {"width": 1024}), ("fast", {"n_residual": 100}), ("cyclegan", {"ngf": 1024}),
        ("dcgan", {"ngf": 1024}), ("vae", {"base": 1024}), ("adain", {"slim": 1})]


@pytest.mark.parametrize("kind,meta", HUGE, ids=[f"{k}-{next(iter(m))}" for k, m in HUGE])
def test_a_huge_network_claimed_by_a_small_file_is_refused_before_it_is_built(tmp_path, kind, meta):
    _, loader, _, _ = KINDS[kind]
    path = _model(tmp_path, kind, **meta)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ModelFileError, match="does not match its metadata"):
        loader(path)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 200  # the fast network at width 1024 alone would be 6 GB


def _raw_model(path: Path, header: dict[str, str]) -> Path:
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(path), metadata=header)
    return path


@pytest.mark.parametrize("version,words", [("99", "newer than this impasto reads"), ("x" * 10_000, "invalid"),
                                           (None, "invalid")])
def test_an_unknown_format_version_is_refused(tmp_path, version, words):
    header = {"kind": transformer.KIND, "meta": "{}"}
    if version is not None:
        header["format_version"] = version
    with pytest.raises(ModelFileError, match=words) as info:
        transformer.load_model(_raw_model(tmp_path / "m.safetensors", header))
    assert len(str(info.value)) < 300


def test_metadata_that_is_not_an_object_or_a_giant_kind_is_refused_briefly(tmp_path):
    listed = _raw_model(tmp_path / "a.safetensors", {"kind": transformer.KIND, "format_version": "1", "meta": "[1, 2]"})
    with pytest.raises(ModelFileError, match="JSON object"):
        transformer.load_model(listed)
    giant = _raw_model(tmp_path / "b.safetensors", {"kind": "k" * 4_000_000, "format_version": "1", "meta": "{}"})
    with pytest.raises(ModelFileError) as info:
        transformer.load_model(giant)
    assert len(str(info.value)) < 300


# ---- 14: NaN weights and non-finite output ------------------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(KINDS))
def test_nan_weights_are_refused_at_load_for_every_kind(tmp_path, kind):
    _, loader, state, _ = KINDS[kind]
    tensors = state()
    key = next(k for k, v in tensors.items() if v.is_floating_point() and v.numel() > 1)
    tensors[key] = tensors[key].clone().fill_(math.nan)
    with pytest.raises(ModelFileError, match="NaN"):
        loader(_model(tmp_path, kind, dtype=torch.float32, tensors=tensors))


def test_stylize_with_a_nan_model_exits_2_and_writes_nothing(tmp_path, capsys):
    net = transformer.TransformerNet(1, 4, 1)
    torch.nn.init.constant_(net.up[-1].conv.bias, math.inf)
    model = transformer.save_model(tmp_path / "nan.safetensors", net, {"n_styles": 1, "width": 4, "n_residual": 1})
    photo, out = _png(tmp_path / "p.png", 16, 16), tmp_path / "o.png"
    assert main(["stylize", str(photo), "--method", "fast", "--model", str(model), "-o", str(out), "-q"]) == 2
    assert "NaN or infinite" in _one_line(capsys.readouterr().err) and not out.exists()


def test_the_contract_refuses_a_non_finite_output_instead_of_a_black_picture(tmp_path, fast_model, monkeypatch,
                                                                             capsys):
    monkeypatch.setitem(stylizer._RUNNERS, "fast", lambda r, c, p: (torch.full_like(r.content, math.nan), {}))
    photo, out = _png(tmp_path / "p.png", 16, 16), tmp_path / "o.png"
    with pytest.raises(ImpastoError, match="NaN"):
        stylizer.stylize(stylizer.StylizeRequest(load_image(photo), [], stylizer.FastOptions(model=str(fast_model))))
    assert main(["stylize", str(photo), "--method", "fast", "--model", str(fast_model), "-o", str(out), "-q"]) == 2
    assert "NaN" in _one_line(capsys.readouterr().err) and not out.exists()


class _Broken(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full_like(x, math.nan)


def test_translate_refuses_a_non_finite_output(tmp_path, cyclegan_model, monkeypatch, capsys):
    import impasto.translate as translate

    monkeypatch.setattr(translate, "_cached", lambda path, mtime: ({"a2b": _Broken(), "b2a": _Broken()},
                                                                     {"names": ["A", "B"]}))
    photo, out = _png(tmp_path / "p.png", 16, 16), tmp_path / "o.png"
    assert main(["translate", str(photo), "--model", str(cyclegan_model), "-o", str(out), "--device", "cpu", "-q"]) == 2
    assert "NaN" in _one_line(capsys.readouterr().err) and not out.exists()


def test_generate_refuses_non_finite_samples(tmp_path, monkeypatch, capsys):
    import impasto.generate as generate

    net = vae.ConvVAE(32, 8, 4).eval()
    torch.nn.init.constant_(net.from_z.bias, math.nan)
    monkeypatch.setattr(generate, "load", lambda model: generate.Loaded("vae", net, {"size": 32, "zdim": 8, "base": 4}))
    out = tmp_path / "grid.png"
    assert main(["generate", "--model", str(tmp_path / "any"), "-n", "2", "-o", str(out), "-q"]) == 2
    assert "NaN" in _one_line(capsys.readouterr().err) and not out.exists()


# ---- 15: decompression bombs and colour profiles ---------------------------------------------------------

def test_impasto_max_pixels_can_raise_the_limit_past_pillows(tmp_path, monkeypatch):
    photo = _png(tmp_path / "p.png", 100, 100)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow alone would refuse 10,000 pixels
    monkeypatch.setenv("IMPASTO_MAX_PIXELS", "20000")
    assert load_image(photo).shape == (1, 3, 100, 100)


def test_a_bomb_is_refused_with_impastos_limit_not_pillows(tmp_path, monkeypatch):
    photo = _png(tmp_path / "p.png", 100, 100)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    monkeypatch.setenv("IMPASTO_MAX_PIXELS", "5000")
    with pytest.raises(InputError, match=r"impasto's limit of 0\.005 megapixels") as info:
        load_image(photo)
    assert "IMPASTO_MAX_PIXELS" in str(info.value) and "1000" not in str(info.value)

    def bomb(*args, **kwargs):
        raise Image.DecompressionBombError("Image size (9 pixels) exceeds limit of 178956970 pixels")

    monkeypatch.setattr(Image, "open", bomb)
    with pytest.raises(InputError, match="impasto's limit") as info:
        load_image(photo)
    assert "178956970" not in str(info.value)


def _prophoto_like_profile() -> bytes:
    """An ICC v2 matrix/TRC RGB profile with ProPhoto's primaries and gamma 1.8 (no profile file ships)."""
    def s15(x: float) -> bytes:
        return struct.pack(">i", round(x * 65536))

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ \0\0\0\0" + s15(x) + s15(y) + s15(z)

    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(1.8 * 256)) + b"\0\0"
    text = b"ProPhoto-like test\0"
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + bytes(8) + bytes(3) + bytes(67)
    tags = [(b"desc", desc), (b"wtpt", xyz(0.9642, 1.0, 0.8249)), (b"rXYZ", xyz(0.7977, 0.2880, 0.0)),
            (b"gXYZ", xyz(0.1352, 0.7119, 0.0)), (b"bXYZ", xyz(0.0313, 0.0001, 0.8249)), (b"rTRC", curve),
            (b"gTRC", curve), (b"bTRC", curve), (b"cprt", b"text\0\0\0\0none\0\0\0\0")]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, body in tags:
        body += bytes(-len(body) % 4)
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    header = (struct.pack(">I", offset + len(data)) + bytes(4) + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
              + bytes(12) + b"acsp" + bytes(28) + s15(0.9642) + s15(1.0) + s15(0.8249) + bytes(48))
    return header + struct.pack(">I", len(tags)) + table + data


def test_a_wide_gamut_photo_is_converted_to_srgb_on_load(tmp_path):
    pytest.importorskip("PIL.ImageCms", reason="Pillow without ImageCms: ICC profiles are ignored")
    profile = _prophoto_like_profile()
    grey = tmp_path / "grey.png"
    Image.new("RGB", (4, 4), (128, 128, 128)).save(grey, icc_profile=profile)
    green = tmp_path / "green.png"
    Image.new("RGB", (4, 4), (0, 200, 0)).save(green, icc_profile=profile)
    g = load_image(grey)[0, :, 0, 0] * 255
    assert torch.allclose(g, g.mean(), atol=1) and 140 < float(g.mean()) < 152  # gamma 1.8 grey, brighter in sRGB
    r, gr, b = (load_image(green)[0, :, 0, 0] * 255).tolist()
    assert gr > 220 and r < 10 and b < 10  # ProPhoto's green is beyond sRGB's: the most saturated sRGB green


def test_untagged_srgb_or_broken_profiles_leave_pixels_unchanged(tmp_path):
    ImageCms = pytest.importorskip("PIL.ImageCms", reason="Pillow without ImageCms: ICC profiles are ignored")
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for name, save in (("plain", {}), ("srgb", {"icc_profile": srgb}), ("broken", {"icc_profile": b"not a profile"})):
        path = tmp_path / f"{name}.png"
        Image.new("RGB", (4, 4), (128, 40, 200)).save(path, **save)
        assert (load_image(path)[0, :, 0, 0] * 255).round().tolist() == [128, 40, 200], name
