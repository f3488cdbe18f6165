"""One dispatcher per kernel op: which backend runs where, and errors that name the offending tensor."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import types

import pytest
import torch

from longwatch.kernels import (KernelUnavailable, _attn_triton, _dispatch, _pool_triton, cross_attention,
                               pool_spatial, pool_temporal)


def _refuse(*_args, **_kwargs):
    raise AssertionError("the Triton launcher ran for CPU tensors under impl='auto'")


def test_auto_takes_the_torch_path_for_cpu_tensors(monkeypatch):
    monkeypatch.setattr(_attn_triton, "cross_attention", _refuse)
    monkeypatch.setattr(_pool_triton, "pool1d", _refuse)
    q, k, v = torch.randn(1, 2, 3, 32), torch.randn(1, 2, 7, 32), torch.randn(1, 2, 7, 32)
    assert torch.equal(cross_attention(q, k, v), cross_attention(q, k, v, impl="torch"))
    x = torch.randn(2, 6, 6, 8)
    assert torch.equal(pool_spatial(x, (3, 3)), pool_spatial(x, (3, 3), impl="torch"))
    assert torch.equal(pool_temporal(x, 1), pool_temporal(x, 1, impl="torch"))


def test_auto_on_cuda_takes_triton_unless_the_kernel_cannot_take_a_tensor(monkeypatch):
    """Decision logic only (no GPU here): stand-ins carry the device; a stub module judges the tensors."""
    class OnCuda:
        device = types.SimpleNamespace(type="cuda")

        def __init__(self, fits: bool):
            self.fits = fits

    stub = types.SimpleNamespace(INTERPRET=False,
                                 problem=lambda name, t: None if t.fits else ValueError(f"{name}: cannot take it"))
    monkeypatch.setattr(_dispatch, "triton_module", lambda name: stub)
    assert _dispatch.choose_impl("op", "auto", "m", q=OnCuda(True), k=OnCuda(True)) is stub
    assert _dispatch.choose_impl("op", "auto", "m", q=OnCuda(True), k=OnCuda(False)) is None
    with pytest.raises(ValueError, match="k: cannot take it"):
        _dispatch.choose_impl("op", "triton", "m", q=OnCuda(True), k=OnCuda(False))
    monkeypatch.setattr(_dispatch, "triton_module", lambda name: None)  # triton missing: auto stays quiet
    assert _dispatch.choose_impl("op", "auto", "m", q=OnCuda(True)) is None


def test_without_interpreter_import_is_cuda_free_and_explicit_triton_refuses_cpu():
    """A fresh process without TRITON_INTERPRET: import touches neither triton nor CUDA, auto works,
    impl='triton' on CPU tensors raises KernelUnavailable saying what to do."""
    script = textwrap.dedent("""
        import sys, torch
        import longwatch.kernels as K
        assert "triton" not in sys.modules, "import longwatch.kernels imported triton"
        q = torch.randn(1, 1, 2, 32); k = torch.randn(1, 1, 5, 32)
        K.cross_attention(q, k, k); K.pool_spatial(torch.randn(1, 4, 4, 8), (2, 2))
        assert not torch.cuda.is_initialized(), "CUDA initialised on CPU use"
        for call in (lambda: K.cross_attention(q, k, k, impl="triton"),
                     lambda: K.pool_temporal(torch.randn(3, 2, 2, 8), 2, impl="triton")):
            try:
                call()
            except K.KernelUnavailable as e:
                print("REFUSED:", e)
            else:
                raise SystemExit("impl='triton' ran on CPU without the interpreter")
    """)
    env = {key: val for key, val in os.environ.items() if key != "TRITON_INTERPRET"}
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    refusals = [line for line in run.stdout.splitlines() if line.startswith("REFUSED:")]
    assert len(refusals) == 2 and all("TRITON_INTERPRET=1" in line for line in refusals), run.stdout


def test_missing_triton_falls_back_under_auto_and_raises_under_triton(monkeypatch):
    # None in sys.modules makes importing the Triton modules fail, as on a machine without triton.
    monkeypatch.setitem(sys.modules, "longwatch.kernels._attn_triton", None)
    monkeypatch.setitem(sys.modules, "longwatch.kernels._pool_triton", None)
    q, k = torch.randn(1, 1, 2, 32), torch.randn(1, 1, 5, 32)
    assert cross_attention(q, k, k).shape == q.shape
    with pytest.raises(KernelUnavailable, match="triton does not import.*longwatch\\[gpu\\]"):
        cross_attention(q, k, k, impl="triton")
    with pytest.raises(KernelUnavailable, match="pool_spatial: impl='triton' but triton does not import"):
        pool_spatial(torch.randn(4, 4, 8), (2, 2), impl="triton")


def test_unknown_impl_is_rejected():
    with pytest.raises(ValueError, match="impl must be one of"):
        pool_spatial(torch.randn(4, 4, 8), (2, 2), impl="cuda")


def _qkv(dtype=torch.float32):
    return torch.randn(2, 4, 3, 32, dtype=dtype), torch.randn(2, 2, 9, 32, dtype=dtype), \
        torch.randn(2, 2, 9, 32, dtype=dtype)


@pytest.mark.parametrize("impl", ["torch", "triton"])
@pytest.mark.parametrize("bad, error, names", [
    (lambda q, k, v: dict(q=q[0]), ValueError, "q: expected [B, Hq, M, d]"),
    (lambda q, k, v: dict(k=k.half()), TypeError, "k: dtype torch.float16 differs"),
    (lambda q, k, v: dict(v=v[:, :, :5]), ValueError, "v: shape"),
    (lambda q, k, v: dict(q=q[:, :3]), ValueError, "q: 3 query heads"),
    (lambda q, k, v: dict(k=k[..., :16], v=v[..., :16]), ValueError, "k: head dim 16"),
    (lambda q, k, v: dict(mask=torch.ones(2, 3, 9)), TypeError, "mask: expected a bool tensor"),
    (lambda q, k, v: dict(mask=torch.ones(2, 4, 9, dtype=torch.bool)), ValueError, "mask: shape (2, 4, 9)"),
    (lambda q, k, v: dict(kv_lens=torch.tensor([3])), ValueError, "kv_lens: expected integer [B]"),
    (lambda q, k, v: dict(kv_lens=torch.tensor([3, 10])), ValueError, "kv_lens: each length"),
    (lambda q, k, v: dict(kv_offsets=torch.tensor([0, 2, 9])), ValueError, "k: expected [Hkv, total_N, d]"),
    (lambda q, k, v: dict(q=q.long()), TypeError, "q: expected a floating-point"),
], ids=["q-rank", "k-dtype", "v-shape", "heads", "head-dim", "mask-dtype", "mask-shape", "lens-shape",
        "lens-range", "offsets-layout", "q-int"])
def test_attention_errors_name_the_tensor(impl, bad, error, names):
    q, k, v = _qkv()
    args = dict(q=q, k=k, v=v) | bad(q, k, v)
    with pytest.raises(error, match=re.escape(names)):
        cross_attention(args.pop("q"), args.pop("k"), args.pop("v"), impl=impl, **args)


def test_triton_launchers_name_non_contiguous_and_unsupported_tensors():
    q, k, v = _qkv()
    k_strided = k.transpose(-1, -2).contiguous().transpose(-1, -2)  # same values, last-dim stride != 1
    with pytest.raises(ValueError, match="k: Triton cross_attention needs a contiguous last dim"):
        cross_attention(q, k_strided, v, impl="triton")
    torch.testing.assert_close(cross_attention(q, k_strided, v, impl="torch"), cross_attention(q, k, v, impl="torch"))
    with pytest.raises(TypeError, match="q: Triton cross_attention supports"):
        cross_attention(*(t.double() for t in (q, k, v)), impl="triton")
    x = torch.randn(2, 5, 6, 8).transpose(1, 2)
    with pytest.raises(ValueError, match=r"x: Triton pooling needs a contiguous tensor.*x\.contiguous\(\)"):
        pool_spatial(x, (2, 2), impl="triton")
    with pytest.raises(TypeError, match="x: pooling averages, so x must be floating point"):
        pool_spatial(torch.zeros(4, 4, 3, dtype=torch.uint8), (2, 2))
    with pytest.raises(ValueError, match="x: grid=.7, 6. holds 42 tokens but x has N=40"):
        pool_spatial(torch.randn(2, 40, 8), (2, 2), grid=(7, 6))
    with pytest.raises(ValueError, match="out_hw: output sizes must be positive"):
        pool_spatial(torch.randn(4, 4, 8), (0, 2))
    for impl in ("torch", "triton"):  # [N, D] has no time axis at the default dim=-4
        with pytest.raises(ValueError, match=r"x: dim=-4 is not an axis of shape \(6, 8\)"):
            pool_temporal(torch.randn(6, 8), 2, impl=impl)
