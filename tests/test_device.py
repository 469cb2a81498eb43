"""Device helpers: the allocator switch, the inference copies that skip per-call weight casts, and the
single-threaded eigendecomposition."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

from impasto import device
from impasto.device import inference_copy, keep_freed_memory


def test_keep_freed_memory_can_be_turned_off_by_environment(monkeypatch):
    monkeypatch.setenv("IMPASTO_KEEP_FREED_MEMORY", "0")
    assert keep_freed_memory.__wrapped__() is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_keep_freed_memory_applies_on_glibc_linux(monkeypatch):
    monkeypatch.delenv("IMPASTO_KEEP_FREED_MEMORY", raising=False)
    assert keep_freed_memory.__wrapped__() is True


def test_inference_copy_holds_weights_in_the_compute_dtype_and_leaves_the_original_alone():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    cpu = torch.device("cpu")
    copy = inference_copy(net, cpu, torch.bfloat16)
    assert copy is inference_copy(net, cpu, torch.bfloat16)  # cached: built once per network and dtype
    assert net[0].weight.dtype == torch.float32 and net[0].weight.requires_grad
    assert copy[0].weight.dtype == torch.bfloat16 and not copy[0].weight.requires_grad and not copy.training
    assert copy[0].weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.rand(1, 3, 8, 8)
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16):
        assert torch.allclose(copy(x).float(), net(x).float(), atol=1e-2)
    assert inference_copy(net, cpu, None)[0].weight.dtype == torch.float32


def test_eigh_solves_on_one_thread_and_gives_the_thread_count_back(monkeypatch):
    seen = []
    solve = torch.linalg.eigh

    def spy(m):
        seen.append(torch.get_num_threads())
        return solve(m)

    monkeypatch.setattr(torch.linalg, "eigh", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        a = torch.randn(32, 96, dtype=torch.float64)
        cov = a @ a.T / 96
        vals, vecs = device.eigh(cov)
        assert seen == [1] and torch.get_num_threads() == 2
        assert torch.allclose(vecs @ torch.diag(vals) @ vecs.T, cov, atol=1e-10)
        monkeypatch.setattr(torch.linalg, "eigh", lambda m: (_ for _ in ()).throw(RuntimeError("no")))
        with pytest.raises(RuntimeError):
            device.eigh(cov)
        assert torch.get_num_threads() == 2  # given back after a failure too
    finally:
        torch.set_num_threads(before)


def test_a_pool_worker_started_while_eigh_runs_keeps_the_process_thread_count(monkeypatch):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    inside, release = threading.Event(), threading.Event()
    solve = torch.linalg.eigh

    def slow(m):  # hold the one-thread window open while a worker starts
        inside.set()
        release.wait(10)
        return solve(m)

    monkeypatch.setattr(torch.linalg, "eigh", slow)
    try:
        initializer = device.threads_initializer()
        solver = threading.Thread(target=device.eigh, args=(torch.eye(4, dtype=torch.float64),))
        solver.start()
        assert inside.wait(10)
        def first_op_then_count() -> int:
            torch.ones(64, 64).sum()  # torch settles a thread's count at its first op
            return torch.get_num_threads()

        with ThreadPoolExecutor(1) as bare:  # what the initializer is for: a bare worker adopts the window's 1
            assert bare.submit(first_op_then_count).result() == 1
        with ThreadPoolExecutor(1, initializer=initializer) as pool:
            assert pool.submit(first_op_then_count).result() == 2
        release.set()
        solver.join(10)
    finally:
        release.set()
        torch.set_num_threads(before)
