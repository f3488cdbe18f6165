"""Cross-attention of a few queries over many keys: memory propagation and question-to-clip attention.

`cross_attention_ref` is the pure-torch path (SDPA); `cross_attention` dispatches to it or to Triton.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ._dispatch import Impl, choose_impl

_MODULE = "_attn_triton"
_LOOP_MAX_B = 16  # past this many clips, per-clip SDPA calls cost more in overhead than padding does


@dataclass(frozen=True)
class _Inputs:
    """Validated call: k, v stay [B or 1, Hkv, N, d]; keys of batch b are rows start[b] : start[b] + lens[b]."""

    k: torch.Tensor
    v: torch.Tensor
    starts: torch.Tensor | None  # int64 [B]; None = padded layout starting at row 0
    lens: torch.Tensor | None  # int64 [B]; None = every batch sees all N keys
    n_max: int  # keys per batch the mask's last axis indexes
    mask: torch.Tensor | None  # bool, expanded (no copy) to [B, M, n_max]
    scale: float


def _shape(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def _validate(q, k, v, kv_lens, kv_offsets, mask, scale) -> _Inputs:
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(f"{name}: expected a floating-point tensor, got {t.dtype}")
    if q.ndim != 4:
        raise ValueError(f"q: expected [B, Hq, M, d], got shape {_shape(q)}")
    B, HQ, M, D = q.shape
    packed = kv_offsets is not None
    want = "[Hkv, total_N, d] (packed, with kv_offsets)" if packed else "[B, Hkv, N, d]"
    for name, t in (("k", k), ("v", v)):
        if t.ndim != (3 if packed else 4):
            raise ValueError(f"{name}: expected {want}, got shape {_shape(t)}")
        if t.dtype != q.dtype:
            raise TypeError(f"{name}: dtype {t.dtype} differs from q's {q.dtype}; cast {name} to {q.dtype}")
        if t.device != q.device:
            raise ValueError(f"{name}: on {t.device} but q is on {q.device}")
    if packed:
        k, v = k.unsqueeze(0), v.unsqueeze(0)
    if k.shape != v.shape:
        raise ValueError(f"v: shape {_shape(v)} differs from k's {_shape(k)}")
    if not packed and k.shape[0] != B:
        raise ValueError(f"k: batch {k.shape[0]} differs from q's {B} (q {_shape(q)}, k {_shape(k)})")
    HKV, N = k.shape[1], k.shape[2]
    if k.shape[3] != D:
        raise ValueError(f"k: head dim {k.shape[3]} differs from q's {D} (q {_shape(q)}, k {_shape(k)})")
    if HKV == 0 or HQ % HKV:
        raise ValueError(f"q: {HQ} query heads is not a multiple of k's {HKV} key/value heads")

    starts = lens = None
    n_max = N
    if kv_lens is not None and packed:
        raise ValueError("kv_lens: pass either kv_lens (padded k/v) or kv_offsets (packed k/v), not both")
    if packed:
        offs = torch.as_tensor(kv_offsets)
        if offs.shape != (B + 1,) or offs.is_floating_point():
            raise ValueError(f"kv_offsets: expected integer [B+1] = [{B + 1}], got {offs.dtype} {_shape(offs)}")
        offs = offs.to(device=q.device, dtype=torch.int64)
        lens = offs[1:] - offs[:-1]
        if B and (int(offs[0]) != 0 or int(offs[-1]) > N or bool((lens < 0).any())):
            raise ValueError(f"kv_offsets: must start at 0, never decrease and end <= total_N={N}, "
                             f"got {offs.tolist()}")
        starts, n_max = offs[:-1], int(lens.max()) if B else 0
    elif kv_lens is not None:
        lens = torch.as_tensor(kv_lens)
        if lens.shape != (B,) or lens.is_floating_point():
            raise ValueError(f"kv_lens: expected integer [B] = [{B}], got {lens.dtype} {_shape(lens)}")
        lens = lens.to(device=q.device, dtype=torch.int64)
        if B and (bool((lens < 0).any()) or int(lens.max()) > N):
            raise ValueError(f"kv_lens: each length must be in [0, N={N}], got {lens.tolist()}")
    if mask is not None:
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            raise TypeError(f"mask: expected a bool tensor [B, M, N] (True = attend), got "
                            f"{getattr(mask, 'dtype', type(mask).__name__)}")
        try:
            mask = mask.to(q.device).expand(B, M, n_max)
        except RuntimeError:
            raise ValueError(f"mask: shape {_shape(mask)} does not broadcast to [B, M, N] = {[B, M, n_max]}"
                             ) from None
    if scale is None:
        scale = 1.0 / math.sqrt(D)
    return _Inputs(k, v, starts, lens, n_max, mask, float(scale))


def _padded(inp: _Inputs, B: int) -> tuple[torch.Tensor, torch.Tensor]:
    """k, v as [B, Hkv, n_max, d] (a gather only for the packed layout)."""
    if inp.starts is None:
        return inp.k, inp.v
    idx = inp.starts[:, None] + torch.arange(inp.n_max, device=inp.k.device)
    idx = idx.clamp_(max=max(inp.k.shape[2] - 1, 0))  # rows past a clip's end are masked out by its length
    return inp.k[0][:, idx].transpose(0, 1), inp.v[0][:, idx].transpose(0, 1)


def _visible(inp: _Inputs, B: int, M: int, n: int) -> torch.Tensor | None:
    """bool [B, M, n]: key n visible to query m of batch b (None = all visible)."""
    vis = inp.mask[..., :n] if inp.mask is not None else None
    if inp.lens is not None and bool((inp.lens < n).any()):
        in_len = (torch.arange(n, device=inp.k.device) < inp.lens[:, None])[:, None, :]
        vis = in_len.expand(B, M, n) if vis is None else vis & in_len
    return vis


def _cross_attention_torch(q, inp: _Inputs, return_lse: bool, upcast: bool):
    B, HQ, M, D = q.shape
    k, v = _padded(inp, B)
    # Keys past the longest clip are never visible: drop them before any work.
    n = int(inp.lens.max()) if inp.lens is not None and B else k.shape[2]
    k, v = k[:, :, :n], v[:, :, :n]
    HKV = k.shape[1]
    G = HQ // HKV
    dtype = q.dtype
    if upcast and q.element_size() < 4:
        q, k, v = q.float(), k.float(), v.float()
    # Query head h reads kv head h // G; stacking the G heads as rows lets SDPA run with Hkv heads
    # and never copies k or v.
    qg = q.reshape(B, HKV, G * M, D)
    vis = _visible(inp, B, M, n)
    if vis is not None and inp.mask is None and B <= _LOOP_MAX_B:
        # Lengths only: one SDPA per clip over its own keys skips the padding and the mask
        # (measured ~2x faster than one masked call at 4 clips of 512-8192 keys).
        out = qg.new_zeros(qg.shape)
        lse = qg.new_full(qg.shape[:-1], float("-inf"), dtype=torch.float32) if return_lse else None
        for b, nb in enumerate(inp.lens.tolist()):
            if not nb:
                continue
            qb, kb, vb = qg[b:b + 1], k[b:b + 1, :, :nb], v[b:b + 1, :, :nb]
            if return_lse:
                ob, lse_b = _attention_with_lse(qb, kb, vb, None, inp.scale)
                out[b], lse[b] = ob[0], lse_b[0]
            else:
                out[b] = F.scaled_dot_product_attention(qb, kb, vb, scale=inp.scale)[0]
        return out.reshape(B, HQ, M, D).to(dtype), lse.reshape(B, HQ, M) if return_lse else None
    rows = vis.repeat(1, G, 1)[:, None] if vis is not None else None  # [B, 1, G*M, n]
    if return_lse:
        if n:
            out, lse = _attention_with_lse(qg, k, v, rows, inp.scale)
        else:
            out, lse = torch.zeros_like(qg), qg.new_full(qg.shape[:-1], float("-inf"), dtype=torch.float32)
        lse = lse.reshape(B, HQ, M)
    else:
        lse = None
        out = F.scaled_dot_product_attention(qg, k, v, attn_mask=rows, scale=inp.scale) if n else torch.zeros_like(qg)
    out = out.reshape(B, HQ, M, D)
    if vis is not None:
        # SDPA backends disagree on rows with no visible key (nan or 0, lse 0); the contract is 0 and -inf.
        blind = ~vis.any(-1)[:, None, :]
        out = out.masked_fill(blind[..., None], 0.0)
        lse = lse.masked_fill(blind, float("-inf")) if lse is not None else None
    return out.to(dtype), lse


def _cpu_flash_op():
    return getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)


def _attention_with_lse(q, k, v, rows, scale):
    """SDPA that also returns the log-sum-exp: q [B, H, L, d], k, v [B, H, n, d] with n > 0,
    rows bool [B, 1, L, n] or None -> out [B, H, L, d], lse [B, H, L] fp32."""
    flash_cpu = _cpu_flash_op()
    if q.device.type == "cpu" and flash_cpu is not None and q.numel():
        # SDPA's CPU kernel computes the lse anyway but returns it only from this private op, which
        # wants an additive float mask (20x faster than the explicit path in bf16, 2x in fp32).
        bias = None if rows is None else torch.zeros(rows.shape, dtype=q.dtype).masked_fill_(~rows, float("-inf"))
        try:
            out, lse = flash_cpu(q, k, v, 0.0, False, attn_mask=bias, scale=scale)
            return out, lse.float()
        except RuntimeError:
            pass  # a configuration the private op rejects: the explicit formula below is always right
    if q.element_size() < 4:
        q, k, v = q.float(), k.float(), v.float()
    s = torch.matmul(q, k.transpose(-1, -2)) * scale
    if rows is not None:
        s = s.masked_fill(~rows, float("-inf"))
    lse = torch.logsumexp(s, -1)
    p = torch.exp(s - lse.masked_fill(lse == float("-inf"), 0.0)[..., None])
    return torch.matmul(p, v), lse.float()


def cross_attention_ref(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *,
                        kv_lens: torch.Tensor | None = None, kv_offsets: torch.Tensor | None = None,
                        mask: torch.Tensor | None = None, scale: float | None = None,
                        return_lse: bool = False, upcast: bool = True):
    """Pure-torch cross-attention; same contract as `cross_attention`. upcast=True computes fp16/bf16
    inputs in fp32 and returns q.dtype (lse is always fp32)."""
    inp = _validate(q, k, v, kv_lens, kv_offsets, mask, scale)
    out, lse = _cross_attention_torch(q, inp, return_lse, upcast)
    return (out, lse) if return_lse else out


def cross_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *,
                    kv_lens: torch.Tensor | None = None, kv_offsets: torch.Tensor | None = None,
                    mask: torch.Tensor | None = None, scale: float | None = None,
                    impl: Impl = "auto", return_lse: bool = False):
    """softmax(q k^T * scale) v over the visible keys of each batch, per query head.

    q: [B, Hq, M, d]; k, v: [B, Hkv, N, d] padded, or [Hkv, total_N, d] packed with kv_offsets.
    Hq must be a multiple of Hkv (query head h reads key/value head h // (Hq // Hkv)).
    kv_lens: int [B], keys 0..kv_lens[b]-1 of batch b are valid (0 allowed).
    kv_offsets: int [B+1] cumulative offsets into packed k, v (batch b owns rows offs[b]:offs[b+1]).
    mask: bool [B, M, N] or broadcastable (True = attend), key index relative to the batch's first key.
    scale: defaults to 1/sqrt(d).
    Returns out [B, Hq, M, d] in q.dtype (and lse [B, Hq, M] fp32 when return_lse). A query with no
    visible key gets out = 0 and lse = -inf.
    """
    inp = _validate(q, k, v, kv_lens, kv_offsets, mask, scale)
    module = choose_impl("cross_attention", impl, _MODULE, q=q, k=inp.k, v=inp.v)
    if module is None:
        out, lse = _cross_attention_torch(q, inp, return_lse, upcast=False)
        return (out, lse) if return_lse else out
    B = q.shape[0]
    starts = inp.starts if inp.starts is not None else torch.zeros(B, dtype=torch.int64, device=q.device)
    lens = inp.lens if inp.lens is not None else torch.full((B,), inp.k.shape[2], dtype=torch.int64,
                                                            device=q.device)
    out, lse = module.cross_attention(q, inp.k, inp.v, starts.to(torch.int32), lens.to(torch.int32),
                                      inp.mask, inp.scale, return_lse)
    return (out, lse) if return_lse else out
