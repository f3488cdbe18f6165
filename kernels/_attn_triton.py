"""Triton flash-style cross-attention forward: online softmax, fp32 accumulation, variable-length keys.

Grouped heads share one program: the G query heads of a key/value head are stacked as G*M rows.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

# Triton decides interpreter vs compiler when the @triton.jit functions below are defined.
INTERPRET = bool(triton.knobs.runtime.interpret)

DTYPES = (torch.float16, torch.bfloat16, torch.float32)
_LOG2E = 1.4426950408889634


@triton.jit
def _cross_attn_fwd(Q, K, V, O, LSE, KV_START, KV_LEN, MASK,
                    sqb, sqh, sqm, skb, skh, skn, svb, svh, svn, sob, soh, som, smb, smm, smn,
                    M, G, HKV, HQ, D, qk_scale,
                    HAS_MASK: tl.constexpr, DOT_FP32: tl.constexpr, PRECISION: tl.constexpr,
                    STORE_LSE: tl.constexpr,
                    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    pid_bh = tl.program_id(1)
    b = (pid_bh // HKV).to(tl.int64)
    hkv = (pid_bh % HKV).to(tl.int64)
    r = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)  # row = g * M + m over the G heads of hkv
    row_ok = r < G * M
    hq = hkv * G + (r // M)
    m = r % M
    d = tl.arange(0, BLOCK_D)
    d_ok = d < D

    q = tl.load(Q + b * sqb + hq[:, None] * sqh + m[:, None] * sqm + d[None, :],
                mask=row_ok[:, None] & d_ok[None, :], other=0.0)
    if DOT_FP32:  # the interpreter's tl.dot on bf16 returns garbage; fp16 and fp32 run as on a GPU
        q = q.to(tl.float32)
    kv_start = tl.load(KV_START + b).to(tl.int64)
    kv_len = tl.load(KV_LEN + b)
    k_base = K + b * skb + hkv * skh + kv_start * skn
    v_base = V + b * svb + hkv * svh + kv_start * svn

    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
    for n0 in range(0, kv_len, BLOCK_N):
        n = n0 + tl.arange(0, BLOCK_N)
        n_ok = n < kv_len
        kv_mask = n_ok[:, None] & d_ok[None, :]
        k = tl.load(k_base + n[:, None] * skn + d[None, :], mask=kv_mask, other=0.0)
        v = tl.load(v_base + n[:, None] * svn + d[None, :], mask=kv_mask, other=0.0)
        if DOT_FP32:
            k = k.to(tl.float32)
            v = v.to(tl.float32)
        # qk_scale carries log2(e): exp2 of these scores is exp of the true ones.
        s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * qk_scale
        visible = row_ok[:, None] & n_ok[None, :]
        if HAS_MASK:
            keep = tl.load(MASK + b * smb + m[:, None] * smm + n[None, :] * smn, mask=visible, other=0)
            visible = visible & (keep != 0)
        s = tl.where(visible, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        # A row with nothing visible so far keeps max -inf; shifting by 0 instead avoids inf - inf = nan.
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        alpha = tl.exp2(m_i - m_safe)
        p = tl.exp2(s - m_safe[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PRECISION)
        m_i = m_new

    empty = l_i == 0.0
    out = acc / tl.where(empty, 1.0, l_i)[:, None]
    tl.store(O + b * sob + hq[:, None] * soh + m[:, None] * som + d[None, :], out.to(O.dtype.element_ty),
             mask=row_ok[:, None] & d_ok[None, :])
    if STORE_LSE:
        lse = tl.where(empty, float("-inf"), (m_i + tl.log2(tl.where(empty, 1.0, l_i))) * 0.6931471805599453)
        tl.store(LSE + (b * HQ + hq) * M + m, lse, mask=row_ok)


def _blocks(rows: int, head_dim: int) -> tuple[int, int, int]:
    block_d = max(16, triton.next_power_of_2(head_dim))
    # tl.dot needs every side >= 16 on a GPU; the interpreter pays per program, so it gets long key blocks.
    block_m = max(16, min(64, triton.next_power_of_2(rows)))
    block_n = 128 if INTERPRET else (64 if block_d <= 64 else 32)
    return block_m, block_n, block_d


def cross_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kv_start: torch.Tensor,
                    kv_len: torch.Tensor, mask: torch.Tensor | None, scale: float,
                    return_lse: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Launch on validated inputs: q[B, Hq, M, d]; k, v [B or 1, Hkv, N, d] (last dim stride 1);
    kv_start, kv_len int32 [B] (first key row and key count per batch); mask bool broadcastable
    strides over [B, M, N'] indexed relative to kv_start. Returns out[B, Hq, M, d] and lse[B, Hq, M] fp32.
    """
    B, HQ, M, D = q.shape
    HKV = k.shape[1]
    G = HQ // HKV
    out = torch.empty((B, HQ, M, D), device=q.device, dtype=store_dtype(q.dtype))
    lse = torch.empty((B, HQ, M), device=q.device, dtype=torch.float32) if return_lse else None
    if out.numel() == 0:
        return out.to(q.dtype), lse
    block_m, block_n, block_d = _blocks(G * M, D)
    skb = k.stride(0) if k.shape[0] > 1 else 0
    svb = v.stride(0) if v.shape[0] > 1 else 0
    if mask is not None:
        mask_arg, (smb, smm, smn) = mask.view(torch.uint8), mask.stride()
    else:
        mask_arg, smb, smm, smn = kv_len, 0, 0, 0
    grid = (triton.cdiv(G * M, block_m), B * HKV)
    _cross_attn_fwd[grid](
        q, k, v, out, lse if lse is not None else out, kv_start, kv_len, mask_arg,
        q.stride(0), q.stride(1), q.stride(2), skb, k.stride(1), k.stride(2), svb, v.stride(1), v.stride(2),
        out.stride(0), out.stride(1), out.stride(2), smb, smm, smn,
        M, G, HKV, HQ, D, scale * _LOG2E,
        HAS_MASK=mask is not None, DOT_FP32=INTERPRET and q.dtype == torch.bfloat16,
        # fp32 inputs get exact fp32 dots, as torch computes them; fp16/bf16 keep triton's default.
        PRECISION="ieee" if q.dtype == torch.float32 or INTERPRET else "tf32",
        STORE_LSE=return_lse, BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_D=block_d,
    )
    return out.to(q.dtype), lse


def store_dtype(dtype: torch.dtype) -> torch.dtype:
    # The interpreter converts fp32 to bf16 by truncation (a GPU rounds to nearest): it stores fp32
    # and torch rounds, so interpreter tests measure the kernel's math, not numpy's missing bf16.
    return torch.float32 if INTERPRET and dtype == torch.bfloat16 else dtype


def problem(name: str, x: torch.Tensor) -> Exception | None:
    """What keeps `x` from this launcher (dtype, layout), as an error that names the tensor; None if fine."""
    if x.dtype not in DTYPES:
        return TypeError(f"{name}: Triton cross_attention supports {DTYPES}, got {x.dtype}; cast {name} first")
    if x.stride(-1) != 1:
        return ValueError(f"{name}: Triton cross_attention needs a contiguous last dim (stride 1), got strides "
                          f"{tuple(x.stride())}; pass {name}.contiguous()")
    return None
