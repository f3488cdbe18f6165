"""Adaptive token pooling: the torch path against python-loop windows, Triton (under TRITON_INTERPRET)
against the fp32 reference, and gradients of both paths against each other.
"""

from __future__ import annotations

import pytest
import torch

from longwatch.kernels import pool_spatial, pool_spatial_ref, pool_temporal, pool_temporal_ref

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
FLOOR = {torch.float32: 1e-6, torch.float16: 1e-4, torch.bfloat16: 1e-3}

# (input shape, (h, w)): non-divisible, shrinking to 1, identity, growing, and 4-D [T, H, W, D] input.
SPATIAL = {
    "7x5-to-3x2": ((2, 3, 7, 5, 48), (3, 2)),
    "32x32-to-8x8": ((1, 2, 32, 32, 16), (8, 8)),
    "frames-9x13-to-4x5": ((3, 9, 13, 24), (4, 5)),
    "to-1x1": ((2, 1, 6, 7, 8), (1, 1)),
    "grow-3x2-to-5x4": ((1, 1, 3, 2, 8), (5, 4)),
}
# (input shape, t_out, dim)
TEMPORAL = {
    "5-to-3": ((2, 5, 3, 3, 40), 3, -4),
    "frames-7-to-2": ((7, 4, 4, 8), 2, -4),
    "tokens-8-to-8": ((2, 8, 9, 16), 8, 1),
    "tokens-3-to-5": ((2, 3, 9, 16), 5, 1),
}


def _window(i: int, n_in: int, n_out: int) -> slice:
    return slice(i * n_in // n_out, -(-(i + 1) * n_in // n_out))


def _loops_spatial(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    H, W = x.shape[-3], x.shape[-2]
    out = torch.empty(*x.shape[:-3], h, w, x.shape[-1], dtype=torch.float64)
    for i in range(h):
        for j in range(w):
            out[..., i, j, :] = x[..., _window(i, H, h), _window(j, W, w), :].double().mean((-3, -2))
    return out


def _loops_temporal(x: torch.Tensor, t_out: int, dim: int) -> torch.Tensor:
    T = x.shape[dim]
    return torch.stack([x.narrow(dim, s.start, s.stop - s.start).double().mean(dim)
                        for s in (_window(i, T, t_out) for i in range(t_out))], dim)


def assert_within_rule(what, got, same_dtype, gold, floor):
    """err(kernel vs fp32 ref) <= 2 * err(same-dtype torch vs fp32 ref) + floor, printing both errors."""
    err, err_pt = (got.float() - gold).abs(), (same_dtype.float() - gold).abs()
    assert err.max() <= 2 * err_pt.max() + floor, (
        f"{what}: triton max {err.max():.3e} mean {err.mean():.3e}; "
        f"torch max {err_pt.max():.3e} mean {err_pt.mean():.3e}; floor {floor:.0e}")


@pytest.mark.parametrize("case", SPATIAL, ids=list(SPATIAL))
def test_spatial_torch_path_averages_the_adaptive_windows(case):
    shape, (h, w) = SPATIAL[case]
    x = torch.randn(shape)
    got = pool_spatial(x, (h, w), impl="torch")
    assert got.shape == (*shape[:-3], h, w, shape[-1])
    torch.testing.assert_close(got.double(), _loops_spatial(x, h, w), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("case", TEMPORAL, ids=list(TEMPORAL))
def test_temporal_torch_path_averages_the_adaptive_windows(case):
    shape, t_out, dim = TEMPORAL[case]
    x = torch.randn(shape)
    got = pool_temporal(x, t_out, dim=dim, impl="torch")
    torch.testing.assert_close(got.double(), _loops_temporal(x, t_out, dim % x.ndim), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", ["7x5-to-3x2", "frames-9x13-to-4x5", "grow-3x2-to-5x4"])
def test_spatial_triton_matches_reference(case, dtype):
    shape, hw = SPATIAL[case]
    x = torch.randn(shape).to(dtype)
    gold = pool_spatial_ref(x.float(), hw)
    out = pool_spatial(x, hw, impl="triton")
    assert out.dtype == dtype and out.shape == gold.shape
    assert_within_rule(f"{case} {dtype}", out, pool_spatial_ref(x, hw, upcast=False), gold, FLOOR[dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", ["5-to-3", "tokens-3-to-5"])
def test_temporal_triton_matches_reference(case, dtype):
    shape, t_out, dim = TEMPORAL[case]
    x = torch.randn(shape).to(dtype)
    gold = pool_temporal_ref(x.float(), t_out, dim=dim)
    out = pool_temporal(x, t_out, dim=dim, impl="triton")
    assert out.dtype == dtype and out.shape == gold.shape
    same = pool_temporal_ref(x, t_out, dim=dim, upcast=False)
    assert_within_rule(f"{case} {dtype}", out, same, gold, FLOOR[dtype])


def test_tokens_with_grid_equal_the_grid_layout():
    x = torch.randn(2, 4, 7 * 6, 32)  # [B, T, N, D] with N = 7 x 6 patches
    grid_out = pool_spatial(x.unflatten(-2, (7, 6)), (3, 4), impl="torch").flatten(-3, -2)
    for impl in ("torch", "triton"):
        torch.testing.assert_close(pool_spatial(x, (3, 4), grid=(7, 6), impl=impl), grid_out)


@pytest.mark.parametrize("impl", ["torch", "triton"])
def test_gradients_flow_to_the_input(impl):
    """A trained adapter needs d(loss)/dx: both paths must give the adjoint of the pooling."""
    x = torch.randn(2, 5, 7, 5, 24, requires_grad=True)
    y = pool_temporal(pool_spatial(x, (3, 4), impl=impl), 2, impl=impl)
    g = torch.randn_like(y)
    (dx,) = torch.autograd.grad(y, x, g)
    x64 = x.detach().double().requires_grad_()
    y64 = _loops_temporal(_loops_spatial(x64, 3, 4), 2, 1)
    (dx64,) = torch.autograd.grad(y64, x64, g.double())
    torch.testing.assert_close(dx.double(), dx64, atol=1e-6, rtol=1e-5)


def test_triton_gradient_in_half_precision_matches_reference():
    x = torch.randn(3, 2, 9, 6, 16).half().requires_grad_()
    g = torch.randn(3, 2, 4, 4, 16).half()
    (dx,) = torch.autograd.grad(pool_spatial(x, (4, 4), impl="triton"), x, g)
    x32 = x.detach().float().requires_grad_()
    (gold,) = torch.autograd.grad(pool_spatial_ref(x32, (4, 4)), x32, g.float())
    xh = x.detach().requires_grad_()
    (same,) = torch.autograd.grad(pool_spatial_ref(xh, (4, 4), upcast=False), xh, g)
    assert dx.dtype == torch.float16
    assert_within_rule("spatial grad fp16", dx, same, gold, FLOOR[torch.float16])
