"""One place that picks the device and the autocast dtype, so every engine and trainer agrees."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import sys
from collections.abc import Callable
from copy import deepcopy
from pathlib import Path
from typing import Literal

import torch

from impasto.errors import InputError

DeviceName = Literal["auto", "cpu", "cuda"]
PrecisionName = Literal["auto", "fp32", "bf16", "fp16"]


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError("--device cuda was asked for but no CUDA GPU is available")
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise InputError(f"unknown device {name!r} (use auto, cpu or cuda)")


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """True on CPUs with native bf16 matmul (AVX512-BF16 or AMX), where bf16 autocast pays off."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags for f in ("avx512_bf16", "amx_bf16"))


@functools.lru_cache(maxsize=1)
def keep_freed_memory() -> bool:
    """Let glibc serve large blocks from the heap and keep freed memory for reuse; True if applied.

    By default every block above 32 MB gets its own mmap and is unmapped on free, so each large
    activation costs fresh zero-filled pages: measured here, a ReLU on a 1024 px VGG activation took
    60 ms instead of 8, and a VGG encoder pass to relu4_1 at 1024 px 0.91 s instead of 0.51 s. The cost
    is that the process keeps its peak heap until it exits, so the CLI and the web server call this;
    library users opt in. ``IMPASTO_KEEP_FREED_MEMORY=0`` turns it off; a no-op off glibc Linux.
    """
    if not sys.platform.startswith("linux") or os.environ.get("IMPASTO_KEEP_FREED_MEMORY", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_max = -1, -4  # <malloc.h>
    return bool(mallopt(m_mmap_max, 0)) and bool(mallopt(m_trim_threshold, 1 << 30))


def pick_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``; ``None`` means plain fp32."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        if device.type != "cuda":
            raise InputError("--precision fp16 needs a CUDA device; use bf16 or fp32 on the CPU")
        return torch.float16
    if precision != "auto":
        raise InputError(f"unknown precision {precision!r} (use auto, fp32, bf16 or fp16)")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_fast_bf16() else None


def precision_name(dtype: torch.dtype | None) -> str:
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


@functools.lru_cache(maxsize=8)
def inference_copy(module: torch.nn.Module, device: torch.device, dtype: torch.dtype | None) -> torch.nn.Module:
    """A frozen copy of a (cached, never trained) network with its weights already in the compute dtype
    and memory format: under autocast, fp32 weights are otherwise cast again on every call."""
    copy = deepcopy(module).to(device, memory_format=memory_format(device, dtype))
    if dtype is not None:
        copy = copy.to(dtype)
    return copy.eval().requires_grad_(False)


def memory_format(device: torch.device, dtype: torch.dtype | None) -> torch.memory_format:
    """channels-last is what oneDNN/cuDNN want for reduced-precision convolutions."""
    return torch.channels_last if dtype is not None else torch.contiguous_format


def eigh(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.linalg.eigh``, on one intra-op thread for a CPU tensor.

    impasto's symmetric eigenproblems are small (3x3 colour, 64-512 channel covariances), and the
    threaded LAPACK solver meets its threads at a barrier on every step: on this 2-core CPU, with the
    cores busy with other processes, a 128x128 decomposition took 0.45-0.94 s on two threads and 2-6 ms
    on one (idle, both ~2 ms), which made WCT most of a 1024 px AdaIN call. The calling thread's count is
    set back afterwards, also after an error. torch also keeps a process-wide count that a thread adopts
    the first time it runs an op, and this lowers it for those milliseconds too: a pool whose workers run
    torch starts them with :func:`threads_initializer`."""
    threads = torch.get_num_threads()
    if matrix.device.type != "cpu" or threads == 1:
        return torch.linalg.eigh(matrix)
    torch.set_num_threads(1)
    try:
        return torch.linalg.eigh(matrix)
    finally:
        torch.set_num_threads(threads)


def threads_initializer() -> Callable[[], None]:
    """A thread pool's ``initializer``: each worker starts with this thread's intra-op thread count,
    instead of whatever torch's process-wide count is when the worker runs its first op (:func:`eigh`
    lowers that for a few milliseconds, and a worker that started then would stay on one thread)."""
    return functools.partial(torch.set_num_threads, torch.get_num_threads())
