"""Triton adaptive average pooling along one axis, forward and its transpose (the backward).

Spatial pooling runs as two separable 1-D passes (rows, then columns) with an fp32 intermediate.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

# Triton decides interpreter vs compiler when the @triton.jit functions below are defined.
INTERPRET = bool(triton.knobs.runtime.interpret)

DTYPES = (torch.float16, torch.bfloat16, torch.float32)


@triton.jit
def _pool1d_fwd(x_ptr, y_ptr, L, LO, INNER, KMAX: tl.constexpr,
                BLOCK_O: tl.constexpr, BLOCK_I: tl.constexpr):
    # x: [outer, L, INNER] -> y: [outer, LO, INNER]; output o averages rows floor(o*L/LO) .. ceil((o+1)*L/LO)-1.
    # Axis 0 enumerates (outer, inner block) pairs: only it may exceed a GPU's 65,535 grid limit.
    n_iblocks = tl.cdiv(INNER, BLOCK_I)
    pid_outer = (tl.program_id(0) // n_iblocks).to(tl.int64)
    o = tl.program_id(1) * BLOCK_O + tl.arange(0, BLOCK_O)
    i = (tl.program_id(0) % n_iblocks) * BLOCK_I + tl.arange(0, BLOCK_I)
    o_ok = o < LO
    i_ok = i < INNER
    start = (o * L) // LO
    count = ((o + 1) * L + LO - 1) // LO - start
    x_base = x_ptr + pid_outer * L * INNER
    acc = tl.zeros([BLOCK_O, BLOCK_I], dtype=tl.float32)
    for k in range(KMAX):
        ok = o_ok & (k < count)
        ptrs = x_base + (start + k).to(tl.int64)[:, None] * INNER + i[None, :]
        acc += tl.load(ptrs, mask=ok[:, None] & i_ok[None, :], other=0.0).to(tl.float32)
    acc = acc / tl.maximum(count, 1).to(tl.float32)[:, None]
    y_ptrs = y_ptr + pid_outer * LO * INNER + o.to(tl.int64)[:, None] * INNER + i[None, :]
    tl.store(y_ptrs, acc.to(y_ptr.dtype.element_ty), mask=o_ok[:, None] & i_ok[None, :])


@triton.jit
def _pool1d_bwd(g_ptr, dx_ptr, L, LO, INNER, CMAX: tl.constexpr,
                BLOCK_L: tl.constexpr, BLOCK_I: tl.constexpr):
    # Transpose of _pool1d_fwd: input row l gathers g[o] / count(o) from every window o that covers it;
    # the first such window is floor(l*LO/L) and at most CMAX windows cover one row.
    n_iblocks = tl.cdiv(INNER, BLOCK_I)
    pid_outer = (tl.program_id(0) // n_iblocks).to(tl.int64)
    l = tl.program_id(1) * BLOCK_L + tl.arange(0, BLOCK_L)
    i = (tl.program_id(0) % n_iblocks) * BLOCK_I + tl.arange(0, BLOCK_I)
    l_ok = l < L
    i_ok = i < INNER
    first = (l * LO) // L
    g_base = g_ptr + pid_outer * LO * INNER
    acc = tl.zeros([BLOCK_L, BLOCK_I], dtype=tl.float32)
    for k in range(CMAX):
        o = first + k
        start = (o * L) // LO
        end = ((o + 1) * L + LO - 1) // LO
        ok = l_ok & (o < LO) & (start <= l) & (l < end)
        ptrs = g_base + o.to(tl.int64)[:, None] * INNER + i[None, :]
        g = tl.load(ptrs, mask=ok[:, None] & i_ok[None, :], other=0.0).to(tl.float32)
        acc += g / tl.maximum(end - start, 1).to(tl.float32)[:, None]
    dx_ptrs = dx_ptr + pid_outer * L * INNER + l.to(tl.int64)[:, None] * INNER + i[None, :]
    tl.store(dx_ptrs, acc.to(dx_ptr.dtype.element_ty), mask=l_ok[:, None] & i_ok[None, :])


def _blocks(rows: int, inner: int) -> tuple[int, int]:
    # The interpreter pays ~1 ms of Python per program, so it gets wide tiles; a GPU gets occupancy-sized ones.
    if INTERPRET:
        return min(triton.next_power_of_2(rows), 64), min(triton.next_power_of_2(inner), 4096)
    return min(triton.next_power_of_2(rows), 8), min(triton.next_power_of_2(inner), 256)


def pool1d(x: torch.Tensor, out_len: int, out_dtype: torch.dtype | None = None) -> torch.Tensor:
    """Adaptive average of x[outer, L, inner] (contiguous) along L -> [outer, out_len, inner]."""
    outer, length, inner = x.shape
    dtype = out_dtype or x.dtype
    y = torch.empty((outer, out_len, inner), device=x.device, dtype=store_dtype(dtype))
    if y.numel() == 0:
        return y.to(dtype)
    kmax = max(((o + 1) * length + out_len - 1) // out_len - (o * length) // out_len for o in range(out_len))
    block_o, block_i = _blocks(out_len, inner)
    grid = (outer * triton.cdiv(inner, block_i), triton.cdiv(out_len, block_o))
    _pool1d_fwd[grid](x, y, length, out_len, inner, KMAX=kmax, BLOCK_O=block_o, BLOCK_I=block_i)
    return y.to(dtype)


def pool1d_backward(g: torch.Tensor, in_len: int, out_dtype: torch.dtype | None = None) -> torch.Tensor:
    """Gradient of `pool1d` w.r.t. its input, given g[outer, out_len, inner] (contiguous)."""
    outer, out_len, inner = g.shape
    dtype = out_dtype or g.dtype
    dx = torch.empty((outer, in_len, inner), device=g.device, dtype=store_dtype(dtype))
    if dx.numel() == 0:
        return dx.to(dtype)
    cmax = triton.cdiv(out_len, in_len) + 1
    block_l, block_i = _blocks(in_len, inner)
    grid = (outer * triton.cdiv(inner, block_i), triton.cdiv(in_len, block_l))
    _pool1d_bwd[grid](g, dx, in_len, out_len, inner, CMAX=cmax, BLOCK_L=block_l, BLOCK_I=block_i)
    return dx.to(dtype)


def store_dtype(dtype: torch.dtype) -> torch.dtype:
    # The interpreter converts fp32 to bf16 by truncation (a GPU rounds to nearest): it stores fp32
    # and torch rounds, so interpreter tests measure the kernel's math, not numpy's missing bf16.
    return torch.float32 if INTERPRET and dtype == torch.bfloat16 else dtype


def problem(name: str, x: torch.Tensor) -> Exception | None:
    """What keeps `x` from this launcher (dtype, layout), as an error that names the tensor; None if fine."""
    if x.dtype not in DTYPES:
        return TypeError(f"{name}: Triton pooling supports {DTYPES}, got {x.dtype}; cast {name} first")
    if not x.is_contiguous():
        return ValueError(f"{name}: Triton pooling needs a contiguous tensor, got strides {tuple(x.stride())}; "
                          f"pass {name}.contiguous()")
    return None
