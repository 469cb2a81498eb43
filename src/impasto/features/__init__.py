"""Pretrained feature extractors (VGG-16/19) and their weights."""

from impasto.features.encoder import Encoder, pretrained_state, resolve_weights
from impasto.features.vgg import VGG, conv_names, layer_names
from impasto.features.weights import KERAS_CAFFE, TORCHVISION, Preprocess, Weights, WeightsEntry

__all__ = [
    "KERAS_CAFFE",
    "TORCHVISION",
    "VGG",
    "Encoder",
    "Preprocess",
    "Weights",
    "WeightsEntry",
    "conv_names",
    "layer_names",
    "pretrained_state",
    "resolve_weights",
]
