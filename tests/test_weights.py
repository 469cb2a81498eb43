"""Pretrained weights: offline Keras VGG-16 read from ONNX, cache integrity, torchvision files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from impasto.errors import WeightsError
from impasto.features import VGG, Weights, conv_names
from impasto.features import weights as W


def test_offline_weights_match_onnx_initializers_exactly():
    import onnx
    from onnx import numpy_helper

    state = Weights.VGG16_KERAS_OFFLINE.entry.state_dict()
    model = onnx.load(str(W.onnx_path()), load_external_data=False)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    convs = [i for i, m in enumerate(VGG("vgg16").features) if isinstance(m, torch.nn.Conv2d)]
    assert len(state) == 26 and len(convs) == 13
    for index, name in zip(convs, conv_names("vgg16"), strict=True):
        block, c = name[4], name[6]
        w = inits[f"functional_1/block{block}_conv{c}_1/convolution/ReadVariableOp:0"]
        b = inits[f"functional_1/block{block}_conv{c}_1/Squeeze:0"]
        assert np.array_equal(state[f"features.{index}.weight"].numpy(), w)
        assert np.array_equal(state[f"features.{index}.bias"].numpy(), b)


def test_converted_cache_records_sha256_and_is_reconverted_when_corrupt(tmp_path, monkeypatch):
    monkeypatch.setenv("IMPASTO_CACHE_DIR", str(tmp_path))
    first = W.load_keras_offline()
    cached = tmp_path / "vgg16-keras-offline.safetensors"
    record = json.loads(cached.with_suffix(".json").read_text())
    assert record["sha256"] == W.sha256_file(cached)
    with open(cached, "r+b") as fh:  # flip bytes in the middle of the tensor data
        fh.seek(cached.stat().st_size // 2)
        fh.write(b"\x00\x01\x02\x03")
    assert W.sha256_file(cached) != record["sha256"]
    again = W.load_keras_offline()
    fresh = json.loads(cached.with_suffix(".json").read_text())
    assert W.sha256_file(cached) == fresh["sha256"]  # rewritten and recorded again
    assert all(torch.equal(first[k], again[k]) for k in first)


def _fake_torchvision_file(tmp_path: Path, arch: str = "vgg16") -> Path:
    state = {f"features.{k}": v for k, v in VGG(arch).features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)
    path = tmp_path / f"{arch}-fake.pth"
    torch.save(state, path)
    return path


def test_torchvision_file_loads_feature_tensors_only(tmp_path):
    path = _fake_torchvision_file(tmp_path)
    state = W.read_torchvision_pth(path, "vgg16")
    assert len(state) == 26 and all(k.startswith("features.") for k in state)


def test_torchvision_file_with_wrong_hash_is_refused(tmp_path):
    path = _fake_torchvision_file(tmp_path)
    with pytest.raises(WeightsError, match="does not match"):
        Weights.VGG16_TORCHVISION.entry.state_dict(path)


def test_torchvision_entry_found_in_weights_dir_by_name(tmp_path, monkeypatch):
    path = _fake_torchvision_file(tmp_path)
    prefix = W.sha256_file(path)[:8]
    entry = W.WeightsEntry("t", "vgg16", W.TORCHVISION, "test", filename=f"vgg16-{prefix}.pth", sha256_prefix=prefix)
    path.rename(tmp_path / entry.filename)
    monkeypatch.setenv("IMPASTO_WEIGHTS_DIR", str(tmp_path))
    assert len(entry.state_dict()) == 26


def test_missing_torchvision_file_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("IMPASTO_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("IMPASTO_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsError, match=r"vgg19-dcbb9e9a\.pth not found"):
        Weights.VGG19_TORCHVISION.entry.state_dict()


def test_pickle_with_code_is_refused_by_weights_only(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pth"
    torch.save({"features.0.weight": Evil()}, path)
    with pytest.raises(WeightsError, match="not a loadable weights file"):
        W.read_torchvision_pth(path, "vgg16")


def test_weights_from_name_rejects_unknown():
    assert Weights.from_name("vgg19-torchvision") is Weights.VGG19_TORCHVISION
    with pytest.raises(WeightsError, match="unknown weights"):
        Weights.from_name("resnet")
