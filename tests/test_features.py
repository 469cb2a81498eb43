"""The VGG encoder: names, truncation, freezing, preprocessing."""

from __future__ import annotations

import pytest
import torch

from impasto.errors import InputError
from impasto.features import KERAS_CAFFE, TORCHVISION, VGG, Encoder, layer_names


def test_layer_names_follow_torchvision_indices():
    names = layer_names("vgg19")
    assert names[0] == "conv1_1" and names[1] == "relu1_1" and names[4] == "pool1"
    assert names.index("relu4_2") == 22 and names[-1] == "pool5" and len(names) == 37
    assert len(layer_names("vgg16")) == 31
    keys = set(VGG("vgg16").state_dict())
    assert "features.0.weight" in keys and "features.28.bias" in keys


def test_encoder_stops_at_deepest_requested_layer_and_names_outputs():
    enc = Encoder(["relu1_1", "relu2_1"])
    assert len(enc.body) == layer_names("vgg16").index("relu2_1") + 1
    out = enc(torch.rand(1, 3, 32, 32))
    assert set(out) == {"relu1_1", "relu2_1"}
    assert out["relu2_1"].shape == (1, 128, 16, 16)


def test_encoder_is_frozen_by_default_and_can_be_unfrozen():
    enc = Encoder(["relu1_2"])
    assert not any(p.requires_grad for p in enc.parameters())
    enc.set_trainable(True)
    assert all(p.requires_grad for p in enc.parameters())


def test_unknown_layer_is_a_clear_error():
    with pytest.raises(InputError, match="unknown vgg16 layer"):
        Encoder(["relu5_4"])


@pytest.mark.parametrize("pre", [KERAS_CAFFE, TORCHVISION])
def test_preprocessing_round_trips(pre):
    x = torch.rand(2, 3, 8, 8)
    assert torch.allclose(pre.invert(pre(x)), x, atol=1e-5)


def test_keras_preprocessing_is_bgr_x255_mean_subtracted():
    red = torch.zeros(1, 3, 1, 1)
    red[:, 0] = 1.0
    y = KERAS_CAFFE(red).flatten().tolist()
    assert y == pytest.approx([-103.939, -116.779, 255 - 123.68])


def test_pretrained_features_respond_to_structure():
    """Real ImageNet filters: an image and its shuffled pixels give very different deep features."""
    from impasto import bundled
    from impasto.io import load_image, resize_long

    enc = Encoder(["relu4_2"])
    img = resize_long(load_image(bundled.photo("astronaut")), 96)
    perm = img.flatten(2)[..., torch.randperm(img.shape[-1] * img.shape[-2])].reshape_as(img)
    a, b = enc(img)["relu4_2"], enc(perm)["relu4_2"]
    assert (a - b).norm() / a.norm() > 0.5
    assert torch.allclose(enc(img)["relu4_2"], a)


def test_requested_convolution_outputs_survive_the_in_place_relus():
    enc = Encoder(["conv1_1", "relu1_1", "relu2_1"])
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    out = enc(x)
    assert out["conv1_1"].min() < 0  # not overwritten by its ReLU
    assert torch.equal(out["relu1_1"], out["conv1_1"].clamp_min(0))
    out["relu2_1"].pow(2).sum().backward()
    manual = x.detach().clone().requires_grad_(True)
    h = enc.preprocess(manual)
    for module in enc.body[:7]:  # conv1_1 .. relu2_1, all out of place
        h = torch.relu(h) if isinstance(module, torch.nn.ReLU) else module(h)
    h.pow(2).sum().backward()
    assert torch.allclose(x.grad, manual.grad, rtol=1e-4, atol=1e-6)
