"""AdaIN: the formula, strength, masks, training steps and resume, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from impasto import bundled
from impasto.cli import main
from impasto.io import load_image
from impasto.losses import mean_std
from impasto.models.adain import Decoder, PatchDiscriminator, adain, masked_adain, wct
from impasto.train.loop import read_log


def test_adain_output_has_the_style_statistics():
    c = torch.randn(2, 8, 10, 12) * 3 + 1
    s = torch.randn(2, 8, 7, 9) * 0.5 - 2
    out = adain(c, s)
    mo, so = mean_std(out)
    ms, ss = mean_std(s)
    assert torch.allclose(mo, ms, atol=1e-4) and torch.allclose(so, ss, atol=1e-3)


def test_masked_adain_gives_each_region_its_style():
    c = torch.randn(1, 4, 16, 16)
    s1, s2 = torch.randn(1, 4, 8, 8) + 5, torch.randn(1, 4, 8, 8) - 5
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., :, :8] = 1
    out = masked_adain(c, [s1, s2], mask)
    assert out[..., :, :8].mean() > 3 and out[..., :, 8:].mean() < -3


def _covariance(f: torch.Tensor) -> torch.Tensor:
    x = f.reshape(f.shape[1], -1).double()
    x = x - x.mean(dim=1, keepdim=True)
    return x @ x.T / x.shape[1]


def test_wct_gives_the_style_mean_and_full_covariance_where_adain_gives_only_the_diagonal():
    torch.manual_seed(0)
    mix = torch.tensor([[1.0, 0.8, 0.0], [0.0, 0.6, 0.5], [0.3, 0.0, 1.0]])
    c = torch.randn(1, 3, 20, 24) * 2 + 1
    s = torch.einsum("ij,njhw->nihw", mix, torch.randn(1, 3, 15, 17)) - 3  # correlated channels
    for out, full in ((wct(c, s), True), (adain(c, s), False)):
        assert torch.allclose(out.mean(dim=(2, 3)), s.mean(dim=(2, 3)), atol=1e-4)
        cov_o, cov_s = _covariance(out), _covariance(s)
        assert torch.allclose(cov_o.diagonal(), cov_s.diagonal(), rtol=1e-3)
        assert torch.allclose(cov_o, cov_s, atol=1e-3) == full


def _wct_reference(c: torch.Tensor, s: torch.Tensor, weight: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Whitening and colouring of one (C, H, W) map, written out in float64, weighted per position."""
    f, g, w = c.double().flatten(1), s.double().flatten(1), weight.double().flatten()
    mc = (f * w).sum(1, keepdim=True) / w.sum()
    cc = ((f - mc) * w) @ (f - mc).T / w.sum() + eps * torch.eye(f.shape[0], dtype=torch.float64)
    ms = g.mean(1, keepdim=True)
    cs = (g - ms) @ (g - ms).T / g.shape[1] + eps * torch.eye(f.shape[0], dtype=torch.float64)

    def power(m: torch.Tensor, p: float) -> torch.Tensor:
        e, v = torch.linalg.eigh(m)
        return v @ torch.diag(e.clamp_min(eps) ** p) @ v.T

    return (power(cs, 0.5) @ power(cc, -0.5) @ (f - mc) + ms).reshape(c.shape)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_wct_matches_a_float64_reference_for_batches_regions_and_either_memory_layout(layout):
    """The (positions, channels) formulation is free for channels-last maps (CPU inference) and must give
    the textbook transform for NCHW (training) as well, per sample and within a weighted region."""
    torch.manual_seed(2)
    c = (torch.randn(3, 5, 9, 12) * 2 + 1).contiguous(memory_format=layout)
    s = torch.randn(3, 5, 7, 20).contiguous(memory_format=layout)
    region = torch.rand(3, 1, 9, 12)
    for weights in (None, region):
        out = wct(c, s, weights)
        for i in range(3):
            ref = _wct_reference(c[i], s[i], torch.ones(9, 12) if weights is None else region[i])
            assert torch.allclose(out[i].double(), ref, rtol=1e-4, atol=1e-4)


def test_masked_wct_gives_each_region_its_styles_covariance():
    """Each region gets its own painting's channel correlations (opposite signs here), which per-channel
    AdaIN statistics could not give."""
    torch.manual_seed(1)
    c = torch.randn(1, 2, 32, 32)
    base = torch.randn(1, 2, 16, 16)
    s1 = torch.stack([base[:, 0], base[:, 0] + 0.3 * base[:, 1]], dim=1) + 5  # correlated +
    s2 = torch.stack([base[:, 0], -base[:, 0] + 0.3 * base[:, 1]], dim=1) - 5  # correlated -
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., :, :16] = 1

    def corr(f: torch.Tensor) -> float:
        return float(torch.corrcoef(f.reshape(2, -1))[0, 1])

    for whiten in (True, False):
        out = masked_adain(c, [s1, s2], mask, whiten=whiten)
        left, right = out[..., :, 1:15], out[..., :, 17:31]  # away from the mask's interpolated seam
        assert left.mean() > 3 and right.mean() < -3
        if whiten:
            assert corr(left) > 0.8 and corr(right) < -0.8
        else:
            assert abs(corr(left)) < 0.3 and abs(corr(right)) < 0.3  # the photo's own (none)


def test_decoder_and_discriminator_shapes():
    d = Decoder(slim=4)
    assert d({"relu4_1": torch.rand(1, 512, 4, 6)}).shape == (1, 3, 32, 48)
    assert PatchDiscriminator()(torch.rand(2, 3, 64, 64)).shape[:2] == (2, 1)


def _opts(model, **given):
    from impasto.options import make_options

    return make_options("adain", {"model": str(model), "precision": "fp32", "device": "cpu", **given})


@pytest.fixture(scope="module")
def tiny_decoder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("adain")
    content, styles = folder / "c", folder / "s"
    content.mkdir()
    styles.mkdir()
    for name, path in bundled.photos().items():
        (content / f"{name}.jpg").write_bytes(path.read_bytes())
    for name, path in list(bundled.styles().items())[:3]:
        (styles / f"{name}.jpg").write_bytes(path.read_bytes())
    out = folder / "dec.safetensors"
    assert main(["train", "adain", "--content-dir", str(content), "--style-dir", str(styles), "--val-dir", str(content),
                 "--size", "48", "--batch", "2", "--steps", "24", "--save-every", "12", "--slim", "4", "--lr", "1e-3",
                 "--adv-weight", "0.05", "--log-every", "1", "--out", str(out), "--quiet"]) == 0
    return out


def test_training_steps_lower_the_loss_and_train_the_discriminator(tiny_decoder):
    rows = [r for r in read_log(tiny_decoder.with_name("dec_run") / "log.jsonl") if "val" not in r]
    first = sum(r["content"] + r["style"] for r in rows[:4]) / 4
    last = sum(r["content"] + r["style"] for r in rows[-4:]) / 4
    assert last < first and all("adv_d" in r for r in rows)


def test_resume_continues_the_step_count(tiny_decoder, tmp_path):
    from impasto.models import files
    from impasto.train import checkpoint as ckpt

    run = tiny_decoder.with_name("dec_run")
    assert ckpt.load(ckpt.latest(run / "checkpoints"))["step"] == 24
    assert files.read_meta(tiny_decoder)[1]["steps"] == 24


def test_strength_zero_is_the_decoded_content_and_full_resolution(tiny_decoder):
    from impasto.methods import stylize_adain

    x = torch.rand(1, 3, 45, 61)
    style = torch.rand(1, 3, 32, 32)
    zero, info = stylize_adain(x, [style], _opts(tiny_decoder, strength=0.0, match_colors=False))
    full, _ = stylize_adain(x, [style], _opts(tiny_decoder, strength=1.0))
    from impasto.methods import _adain_encoder, load_adain_model

    dec, _, _ = load_adain_model(tiny_decoder)
    enc = _adain_encoder("vgg16-keras-offline")
    padded = torch.nn.functional.pad(x, (0, 3, 0, 3), mode="reflect")
    with torch.no_grad():
        decoded = dec(enc(padded))[..., :45, :61].clamp(0, 1)
    assert zero.shape == x.shape and info["size"] == [45, 61]
    assert torch.allclose(zero, decoded, atol=1e-5) and not torch.allclose(zero, full)


def test_cli_adain_two_styles_with_mask_and_errors(tiny_decoder, tmp_path, content_path, shared_images, capsys):
    from PIL import Image

    with Image.open(content_path) as img:
        size = img.size
    mask = tmp_path / "mask.png"
    Image.new("L", size, 255).save(mask)
    styles = ["-s", str(shared_images / "style" / "udnie.jpg"), "-s", str(shared_images / "style" / "mosaic.jpg")]
    out = tmp_path / "o.png"
    base = ["stylize", str(content_path), "--method", "adain", "--model", str(tiny_decoder), *styles]
    assert main([*base, "--mask", str(mask), "-o", str(out), "--json", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["masked"] is True
    assert main([*base, "--mask", str(mask), "--style-weights", "0.01,0.99", "-o", str(out)]) == 2  # not ignored
    assert "does not blend them by --style-weights" in capsys.readouterr().err
    Image.new("L", (10, 10), 255).save(mask)
    assert main([*base, "--mask", str(mask), "-o", str(out)]) == 2
    assert "must match" in capsys.readouterr().err
    assert main([*base, "--style-weights", "1,1", "--strength", "0.5", "-o", str(out), "--quiet"]) == 0


def test_video_keeps_audio_and_smoothing_lowers_flicker(tiny_decoder, tmp_path, shared_images, capsys):
    import av

    out = tmp_path / "v.mp4"
    code = main(["video", str(shared_images / "content" / "cutBunny.mp4"), "--method", "adain", "--model",
                 str(tiny_decoder), "-s", str(shared_images / "style" / "udnie.jpg"), "-o", str(out),
                 "--max-frames", "6", "--json", "--quiet"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["frames"] == 6 and report["audio"] is True
    assert report["flicker_stylized_smoothed"] < report["flicker_stylized_raw"]
    with av.open(str(out)) as c:
        assert {s.type for s in c.streams} == {"video", "audio"}
    from impasto.feedback.fingerprint import file_fingerprint
    from impasto.feedback.store import FeedbackStore, default_db_path

    with FeedbackStore(default_db_path()) as store:  # the whole video is one recorded run
        (run,) = store.history("default")
    assert run["method"] == "adain" and run["id"] == report["run_id"]
    assert run["output_hash"] == file_fingerprint(out) and run["info"]["video"]["frames"] == 6


def test_video_bad_input_exit_2(tiny_decoder, style_path, tmp_path, capsys):
    bad = tmp_path / "x.mp4"
    bad.write_bytes(b"not a video at all")
    assert main(["video", str(bad), "--method", "adain", "--model", str(tiny_decoder), "-s", str(style_path),
                 "-o", str(tmp_path / "o.mp4")]) == 2
    assert "video" in capsys.readouterr().err and not (tmp_path / "o.mp4").exists()


def test_video_with_max_size_writes_capped_smoothed_frames(tiny_decoder, tmp_path, shared_images, capsys):
    import av

    out = tmp_path / "small.mp4"
    assert main(["video", str(shared_images / "content" / "cutBunny.mp4"), "--method", "adain", "--model",
                 str(tiny_decoder), "-s", str(shared_images / "style" / "udnie.jpg"), "-o", str(out),
                 "--max-size", "48", "--max-frames", "3", "--json", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["frames"] == 3
    from impasto.io import capped_size

    with av.open(str(shared_images / "content" / "cutBunny.mp4")) as c:
        h, w = capped_size(c.streams.video[0].height, c.streams.video[0].width, 48)
    with av.open(str(out)) as c:
        stream = c.streams.video[0]
        assert (stream.width, stream.height) == (w // 2 * 2, h // 2 * 2) and max(w, h) == 48
        assert sum(1 for _ in c.decode(stream)) == 3


def _clip_with_sine(path: Path, frames: int = 24, fps: int = 12, seconds: float = 2.0, rate: int = 16000) -> None:
    """A tiny 32x32 clip (``frames`` frames) with an AAC sine tone of ``seconds`` beside it."""
    import av
    import numpy as np

    with av.open(str(path), mode="w") as c:
        video = c.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
        audio = c.add_stream("aac", rate=rate)
        audio.layout = "mono"
        for i in range(frames):
            img = np.full((32, 32, 3), (i * 10) % 256, dtype=np.uint8)
            c.mux(video.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        c.mux(video.encode())
        t = np.arange(int(seconds * rate)) / rate
        tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for start in range(0, len(tone), 1024):
            frame = av.AudioFrame.from_ndarray(tone[None, start:start + 1024], format="flt", layout="mono")
            frame.sample_rate, frame.pts = rate, start
            c.mux(audio.encode(frame))
        c.mux(audio.encode())


def _audio_packets(path: Path) -> list[tuple[int, int, bytes, float]]:
    import av

    with av.open(str(path)) as c:
        return [(pk.pts, pk.dts, bytes(pk), float((pk.pts + pk.duration) * pk.time_base))
                for pk in c.demux(c.streams.audio[0]) if pk.dts is not None]


def test_max_frames_cuts_the_audio_at_the_last_frame_and_a_full_run_keeps_it_whole(tmp_path):
    import av

    from impasto.video import stylize_video

    src, capped, full = tmp_path / "in.mp4", tmp_path / "capped.mp4", tmp_path / "full.mp4"
    _clip_with_sine(src)  # 2 s of frames and of audio
    assert stylize_video(src, capped, lambda x: x, max_frames=3)["frames"] == 3
    with av.open(str(capped)) as c:
        assert abs(float(c.streams.video[0].duration * c.streams.video[0].time_base) - 0.25) < 1e-6
        assert c.duration / 1e6 < 0.25 + 1024 / 16000 + 1e-3  # the container ends with its frames
    audio = _audio_packets(capped)  # whole packets of 64 ms: ends within one packet after the video's 0.25 s
    assert 0.25 <= max(end for *_, end in audio) < 0.25 + 1024 / 16000 + 1e-6
    assert stylize_video(src, full, lambda x: x)["frames"] == 24
    assert _audio_packets(full) == _audio_packets(src)  # every packet as it was, ~2 s


def test_max_frames_cuts_the_audio_of_a_source_that_starts_late_where_its_video_ends(tmp_path):
    import av

    from impasto.video import stylize_video

    clip, late, capped = tmp_path / "clip.mp4", tmp_path / "late.mkv", tmp_path / "capped.mp4"
    _clip_with_sine(clip)
    with av.open(str(clip)) as src, av.open(str(late), "w", format="matroska") as dst:  # every clock +5 s
        streams = {s.type: dst.add_stream_from_template(s) for s in (src.streams.video[0], src.streams.audio[0])}
        for packet in src.demux():
            if packet.dts is None:
                continue
            shift = int(5 / packet.time_base)
            packet.pts, packet.dts = packet.pts + shift, packet.dts + shift
            packet.stream = streams[packet.stream.type]
            dst.mux(packet)
    assert stylize_video(late, capped, lambda x: x, max_frames=3)["frames"] == 3
    ends = [end for *_, end in _audio_packets(capped)]  # the source's audio clock: from ~5 s
    assert ends and 5.25 <= max(ends) < 5.25 + 1024 / 16000 + 0.01  # it was dropped whole: all of it is after 0.25 s


def test_a_truncated_video_gets_one_error_line_and_no_progress_bar(tiny_decoder, style_path, tmp_path,
                                                                   shared_images, capsys):
    cut = tmp_path / "cut.mp4"
    cut.write_bytes((shared_images / "content" / "cutBunny.mp4").read_bytes()[:30_000])
    assert main(["video", str(cut), "--method", "adain", "--model", str(tiny_decoder), "-s", str(style_path),
                 "--max-size", "32", "-o", str(tmp_path / "o.mp4")]) == 2  # not --quiet: a bar would show
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a readable video" in err and "frame" not in err


def test_video_of_a_text_file_named_like_an_image_exit_2(tiny_decoder, style_path, tmp_path, capsys):
    fake = tmp_path / "notes.jpg"  # opens (the image demuxer), declares no frame size, decodes nothing
    fake.write_text("these are notes, not a picture\n" * 20)
    assert main(["video", str(fake), "--method", "adain", "--model", str(tiny_decoder), "-s", str(style_path),
                 "--max-size", "32", "-o", str(tmp_path / "o.mp4"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and ("not a readable video" in err or "declares no frame size" in err)
    assert not list(tmp_path.glob("o*.mp4*")) and not list(tmp_path.glob(".o*"))


def test_a_repeated_style_is_encoded_once_and_a_changed_one_again(tiny_decoder, monkeypatch):
    from impasto import methods

    methods.clear_style_cache()
    x = torch.rand(1, 3, 40, 40)
    style = torch.rand(1, 3, 32, 32)
    calls = []
    enc = methods.inference_copy(methods._adain_encoder("vgg16-keras-offline"), torch.device("cpu"), None)
    real = enc.forward
    monkeypatch.setattr(enc, "forward", lambda image, layers=None: (  # count the style encodings (512 px)
        calls.append(image.shape) if image.shape[-1] == 512 else None) or real(image, layers))
    first, _ = methods.stylize_adain(x, [style], _opts(tiny_decoder, style_size=512))
    again, _ = methods.stylize_adain(x, [style.clone()], _opts(tiny_decoder, style_size=512))
    assert len(calls) == 1 and torch.equal(first, again)  # same pixels, another tensor: cached
    changed = style.clone()
    changed[..., 0, 0] += 0.5
    other, _ = methods.stylize_adain(x, [changed], _opts(tiny_decoder, style_size=512))
    assert len(calls) == 2 and not torch.equal(first, other)
    methods.clear_style_cache()
    methods.stylize_adain(x, [style], _opts(tiny_decoder, style_size=512))
    assert len(calls) == 3


@pytest.fixture
def encoded_sizes(monkeypatch) -> list[int]:
    """The long side each painting is encoded at, in order (the style cache emptied first)."""
    from impasto import methods

    methods.clear_style_cache()
    sizes: list[int] = []
    real = methods.style_features
    monkeypatch.setattr(methods, "style_features",
                        lambda enc, s, size, *a: sizes.append(size) or real(enc, s, size, *a))
    return sizes


def test_the_painting_is_encoded_at_the_outputs_scale_unless_style_size_is_given(tiny_decoder, encoded_sizes):
    """Training saw photo and painting crops of one size; by default the painting is encoded at the
    output's long side (after --max-size), so a 256 px output does not get a painting blown up to 512."""
    from impasto import methods

    x, style = torch.rand(1, 3, 40, 56), torch.rand(1, 3, 90, 70)
    methods.stylize_adain(x, [style], _opts(tiny_decoder))
    methods.stylize_adain(x, [style], _opts(tiny_decoder, max_size=32))
    methods.stylize_adain(x, [style], _opts(tiny_decoder, style_size=100))
    assert encoded_sizes == [56, 32, 100]


def test_the_decoder_runs_at_the_work_size_and_the_output_is_guided_back_to_full_size(tiny_decoder, encoded_sizes):
    """--work-size: the encoder, the painting and the decoder see the photo at the work size; the output has
    the photo's full size; by default (or with a work size above the photo's) it decodes at full size."""
    from impasto import methods

    x, style = torch.rand(1, 3, 60, 90), torch.rand(1, 3, 64, 64)
    small, info = methods.stylize_adain(x, [style], _opts(tiny_decoder, work_size=48))
    full, info_full = methods.stylize_adain(x, [style], _opts(tiny_decoder))
    same, _ = methods.stylize_adain(x, [style], _opts(tiny_decoder, work_size=4096))
    assert small.shape == full.shape == x.shape and encoded_sizes == [48, 90, 90] and torch.equal(full, same)
    assert info["decoded_size"] == [32, 48] and info_full["decoded_size"] == [60, 90]
    assert small.min() >= 0 and small.max() <= 1 and not torch.allclose(small, full)


def test_refine_moves_the_decoders_output_toward_the_paintings_grams_and_refuses_a_mask(tiny_decoder, small_pair):
    """--refine N: N Gatys iterations from the decoder's output lower the Gram distance to the painting;
    with --mask, or on a photo too small for VGG's deepest layer, it is one clear error, not a silent skip."""
    from impasto.errors import InputError
    from impasto.methods import stylize_adain
    from impasto.metrics import style_loss

    content, style = small_pair
    plain, _ = stylize_adain(content, [style], _opts(tiny_decoder))
    steps: list[int] = []
    refined, info = stylize_adain(content, [style], _opts(tiny_decoder, refine=3),
                                  callback=lambda p: steps.append(p.step))  # the CLI's and web's progress
    assert refined.shape == content.shape and info["refine"] == 3 and max(steps) == 3
    assert style_loss(refined, style) < 0.8 * style_loss(plain, style)
    with pytest.raises(InputError, match="--refine"):
        mask = torch.ones(1, 1, *content.shape[-2:])
        stylize_adain(content, [style, style], _opts(tiny_decoder, refine=3), mask=mask)
    with pytest.raises(InputError, match="--refine needs the photo at least 16 px"):  # AdaIN alone pads it
        stylize_adain(torch.rand(1, 3, 14, 20), [style], _opts(tiny_decoder, refine=3))


def test_a_decoder_file_names_the_levels_it_whitens_and_bad_names_are_refused(tiny_decoder, tmp_path):
    """wct_levels in the metadata: the file's decoder is given WCT targets there (stylize_features), AdaIN
    elsewhere; a level the decoder does not read is a ModelFileError naming the field."""
    from impasto.errors import ModelFileError
    from impasto.models import files
    from impasto.models.adain import load_decoder, save_decoder, stylize_features

    dec, meta = load_decoder(tiny_decoder)
    assert dec.wct_levels == ()
    dec.wct_levels = ("relu4_1",)
    path = save_decoder(tmp_path / "w.safetensors", dec, meta)
    dec2, meta2 = load_decoder(path)
    assert dec2.wct_levels == ("relu4_1",) and meta2["wct_levels"] == ["relu4_1"]
    fc, fs = {"relu4_1": torch.randn(1, 512, 4, 5)}, {"relu4_1": torch.randn(1, 512, 6, 6)}
    got = stylize_features(fc, [fs], [1.0], 1.0, dec2)["relu4_1"]
    assert torch.allclose(got, wct(fc["relu4_1"], fs["relu4_1"]), atol=1e-5)
    tensors, _ = files.load(path, "adain-decoder")
    bad = files.save(tmp_path / "bad.safetensors", "adain-decoder", tensors, {**meta2, "wct_levels": ["relu2_1"]})
    with pytest.raises(ModelFileError, match="wct_levels"):
        load_decoder(bad)


@pytest.mark.parametrize("p", [1, 2, 4])
@pytest.mark.parametrize("channels_last", [True, False])
def test_reflect_pad_equals_torch_reflection_padding_and_keeps_bf16_under_autocast(p, channels_last):
    from impasto.models.padding import ReflectPad

    x = torch.randn(2, 5, 9, 7)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    assert torch.equal(ReflectPad(p)(x), torch.nn.ReflectionPad2d(p)(x))  # outside autocast: F.pad itself
    xb = x.to(torch.bfloat16)
    with torch.autocast("cpu", torch.bfloat16):
        y = ReflectPad(p)(xb)
    assert y.dtype == torch.bfloat16 and y.is_contiguous(memory_format=torch.channels_last) == channels_last
    assert torch.equal(y, torch.nn.ReflectionPad2d(p)(xb))


def _tiny_corpus(root: Path) -> Path:
    """photos/ and paintings/ with a split.tsv: 4 train, 1 val and 1 test file each (all readable)."""
    from impasto.io import resize_long, save_image

    photos, paintings = list(bundled.photos().values()), list(bundled.styles().values())
    rows = ["file\tfolder\tsplit"]
    for folder, sources in (("photos", photos), ("paintings", paintings)):
        (root / folder).mkdir(parents=True)
        for i, split in enumerate(["train"] * 4 + ["val", "test"]):
            name = f"{split}_{i}.png"
            save_image(resize_long(load_image(sources[i % len(sources)]), 64), root / folder / name)
            rows.append(f"{name}\t{folder}\t{split}")
    (root / "split.tsv").write_text("\n".join(rows) + "\n")
    return root


def test_corpus_training_reads_no_held_out_file_and_lowers_the_loss(tmp_path, monkeypatch):
    """The split is chosen by name before anything is opened: no 'test' file is ever read by training."""
    import PIL.Image

    corpus = _tiny_corpus(tmp_path / "corpus")
    opened: list[str] = []
    real_open = PIL.Image.open
    monkeypatch.setattr(PIL.Image, "open", lambda fp, *a, **k: opened.append(str(fp)) or real_open(fp, *a, **k))
    out = tmp_path / "skip.safetensors"
    assert main(["train", "adain", "--content-dir", str(corpus / "photos"), "--style-dir", str(corpus / "paintings"),
                 "--split-file", str(corpus / "split.tsv"), "--arch", "skip", "--skip-scale", "0.1", "--slim", "4",
                 "--strength-range", "0.5,1", "--size", "48", "--batch", "2", "--steps", "16", "--save-every", "8",
                 "--lr", "1e-3", "--log-every", "1", "--best-out", str(tmp_path / "best.safetensors"),
                 "--gram-weight", "0.5", "--out", str(out), "--quiet"]) == 0
    assert opened and not [p for p in opened if Path(p).name.startswith("test_")]
    assert any(Path(p).name.startswith("val_") for p in opened)  # validation reads the 'val' rows
    rows = [r for r in read_log(tmp_path / "skip_run" / "log.jsonl") if "val" not in r]
    assert sum(r["total"] for r in rows[-4:]) < sum(r["total"] for r in rows[:4])
    assert all("gram" in r for r in rows)  # the Gram term is trained and logged
    from impasto.models.adain import SkipDecoder, load_decoder

    dec, meta = load_decoder(tmp_path / "best.safetensors")
    assert isinstance(dec, SkipDecoder) and meta["skip_scale"] == 0.1 and "'train' rows" in meta["data"]
    assert meta["gram_weight"] == 0.5 and "gram" in meta["val"]


def test_the_gram_term_is_zero_at_its_target_and_interpolates_grams_by_strength():
    from impasto.losses import gram_matrix
    from impasto.train.adain import GRAM_LAYERS, gram_style_loss

    def feats(seed: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        return {n: torch.rand(2, 4, 6, 6, generator=g) for n in GRAM_LAYERS}

    style, content, other = feats(0), feats(1), feats(2)
    assert float(gram_style_loss(style, style, content, None)) < 1e-10
    assert float(gram_style_loss(content, style, content, torch.zeros(2))) < 1e-10
    assert float(gram_style_loss(other, style, content, None)) > 1e-3
    half = torch.full((2,), 0.5)
    # at strength 0.5 the target is the mean of the two Gram matrices, not either one
    expect = 0.0
    for n in GRAM_LAYERS:
        g_s, g_c = gram_matrix(style[n]), gram_matrix(content[n])
        target = (g_s + g_c) / 2
        expect += float(((g_s - target).pow(2).sum((1, 2)) / target.pow(2).sum((1, 2))).mean()) / len(GRAM_LAYERS)
    assert expect > 0 and abs(float(gram_style_loss(style, style, content, half)) - expect) < 1e-6


def test_the_shipped_decoder_follows_a_blue_and_a_red_painting():
    """Outputs take each painting's colours (the old decoder alone painted the same dark brown whatever
    the painting; the default pixel-level colour match makes the palette follow the painting)."""
    from impasto import options, stylizer
    from impasto.io import resize_long

    photo = resize_long(load_image(bundled.photo("chelsea")), 128)
    gray = resize_long(load_image(bundled.style("kandinsky_in_grey")), 128).mean(1, keepdim=True)
    blue = (gray * torch.tensor([0.15, 0.3, 1.0]).view(1, 3, 1, 1)).clamp(0, 1)
    red = (gray * torch.tensor([1.0, 0.25, 0.15]).view(1, 3, 1, 1)).clamp(0, 1)
    opts = options.make_options("adain", {"precision": "fp32", "device": "cpu"})
    means = {}
    for name, painting in (("blue", blue), ("red", red)):
        out = stylizer.stylize(stylizer.StylizeRequest(photo, [painting], opts)).image
        means[name] = out.mean(dim=(0, 2, 3))
    assert means["blue"][2] > means["blue"][0] + 0.05, means
    assert means["red"][0] > means["red"][2] + 0.05, means


def test_colour_matching_can_be_turned_off_and_is_skipped_with_a_mask(tiny_decoder):
    from impasto.methods import match_colors

    x, style = torch.rand(1, 3, 40, 48), torch.rand(1, 3, 32, 32) * 0.5
    plain, _ = stylize_adain_opts(x, style, tiny_decoder, match_colors=False)
    matched, _ = stylize_adain_opts(x, style, tiny_decoder)
    assert torch.allclose(matched, match_colors(plain, x, [style], [1.0], 1.0), atol=1e-5)
    m, s = matched.mean(dim=(2, 3)), style.mean(dim=(2, 3))
    assert torch.allclose(m, s, atol=0.03)  # the painting's colour means


def stylize_adain_opts(x, style, model, **given):
    from impasto.methods import stylize_adain

    return stylize_adain(x, [style], _opts(model, **given))


def test_fine_tuning_starts_from_the_init_decoder_and_refuses_other_flags(tiny_decoder, tmp_path, capsys):
    """--init: the run's first validation equals the init file's decoder (not random weights), the output
    says where it started, and flags describing another architecture are one line, exit 2."""
    from impasto.models import files
    from impasto.models.adain import load_decoder

    folder = tiny_decoder.parent
    common = ["train", "adain", "--content-dir", str(folder / "c"), "--style-dir", str(folder / "s"),
              "--size", "48", "--batch", "2", "--steps", "2", "--save-every", "2", "--lr", "1e-9", "--quiet"]
    out = tmp_path / "tuned.safetensors"
    assert main([*common, "--slim", "4", "--init", str(tiny_decoder), "--out", str(out)]) == 0
    before, _ = load_decoder(tiny_decoder)
    after, meta = load_decoder(out)
    assert meta["init"] == str(tiny_decoder) and meta["steps"] == 2 and meta["total_steps"] == 24 + 2
    for name, t in before.state_dict().items():  # lr 1e-9: still the init's weights, not a fresh decoder
        assert torch.allclose(t, after.state_dict()[name], atol=1e-4), name
    capsys.readouterr()
    assert main([*common, "--slim", "2", "--init", str(tiny_decoder), "--out", str(tmp_path / "x.safetensors")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--init" in err[0] and "slim" in err[0]
    assert files.read_meta(tiny_decoder)[1]["steps"] == 24  # the init file itself is untouched
    # resumed with another --init (as a Makefile whose default init was since replaced would): the file
    # still names where the weights really started
    other = tmp_path / "other.safetensors"
    other.write_bytes(out.read_bytes())
    assert main([*common, "--steps", "4", "--slim", "4", "--init", str(other), "--out", str(out), "--resume"]) == 0
    meta = files.read_meta(out)[1]
    assert meta["init"] == str(tiny_decoder) and meta["steps"] == 4 and meta["total_steps"] == 24 + 4
    # fine-tuned to a new transform: the file says which levels it whitens and what its init had
    wct_out = tmp_path / "wct.safetensors"
    assert main([*common, "--slim", "4", "--init", str(tiny_decoder), "--wct-levels", "relu4_1",
                 "--out", str(wct_out)]) == 0
    meta = files.read_meta(wct_out)[1]
    assert meta["wct_levels"] == ["relu4_1"] and meta["init_wct_levels"] == []
    capsys.readouterr()
    # resumed without the run's --wct-levels: refused, not silently trained on AdaIN targets
    assert main([*common, "--steps", "4", "--slim", "4", "--init", str(tiny_decoder), "--out", str(wct_out),
                 "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--resume" in err[0] and "wct_levels" in err[0]
    assert main([*common, "--slim", "4", "--wct-levels", "relu2_1", "--out", str(tmp_path / "y.safetensors")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--wct-levels relu2_1" in err[0]
