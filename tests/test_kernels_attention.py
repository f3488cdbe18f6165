"""Triton cross-attention (under TRITON_INTERPRET) against the fp32 torch reference, and the torch path
against a naive per-query formula: odd shapes, grouped heads, variable lengths (0 and 1), masks.
"""

from __future__ import annotations

import math

import pytest
import torch

from longwatch.kernels import cross_attention, cross_attention_ref

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
FLOOR = {torch.float32: 1e-5, torch.float16: 1e-4, torch.bfloat16: 1e-3}

# (B, Hq, Hkv, M, N, d, kv_lens, with_mask): few cases, each covering odd shapes the pipeline produces.
CASES = {
    "single-query-single-key": (1, 2, 2, 1, 1, 32, None, False),
    "gqa-lens-0-1-full-mask-d80": (3, 4, 2, 5, 77, 80, [0, 1, 77], True),
    "mqa-one-query-multi-block": (2, 8, 1, 1, 300, 64, [300, 129], False),
    "d128-odd-mask": (2, 2, 2, 17, 130, 128, None, True),
}


def _inputs(B, HQ, HKV, M, N, D, lens, with_mask, dtype):
    q = torch.randn(B, HQ, M, D).to(dtype)
    k = torch.randn(B, HKV, N, D).to(dtype)
    v = torch.randn(B, HKV, N, D).to(dtype)
    kv_lens = torch.tensor(lens) if lens is not None else None
    mask = None
    if with_mask:
        mask = torch.rand(B, M, N) > 0.4
        mask[-1, 0] = False  # one query that sees nothing
    return q, k, v, kv_lens, mask


def _fp32(*ts):
    return [t.float() for t in ts]


def assert_within_rule(what: str, got: torch.Tensor, same_dtype: torch.Tensor, gold: torch.Tensor, floor: float):
    """err(kernel vs fp32 ref) <= 2 * err(same-dtype torch vs fp32 ref) + floor, printing both errors."""
    err = (got.float() - gold).abs()
    err_pt = (same_dtype.float() - gold).abs()
    msg = (f"{what}: triton max {err.max():.3e} mean {err.mean():.3e}; "
           f"torch max {err_pt.max():.3e} mean {err_pt.mean():.3e}; floor {floor:.0e}")
    assert err.max() <= 2 * err_pt.max() + floor, msg


def _naive(q, k, v, kv_lens, mask, scale):
    """Per batch, per query head: explicit scores, softmax over the visible keys, weighted sum (fp64)."""
    B, HQ, M, D = q.shape
    G = HQ // k.shape[1]
    out = torch.zeros(B, HQ, M, D, dtype=torch.float64)
    lse = torch.full((B, HQ, M), -math.inf, dtype=torch.float64)
    for b in range(B):
        n = int(kv_lens[b]) if kv_lens is not None else k.shape[2]
        for h in range(HQ):
            s = q[b, h].double() @ k[b, h // G, :n].double().T * scale
            vis = mask[b, :, :n] if mask is not None else torch.ones(M, n, dtype=torch.bool)
            s = s.masked_fill(~vis, -math.inf)
            for m in range(M):
                if vis[m].any():
                    lse[b, h, m] = torch.logsumexp(s[m], 0)
                    out[b, h, m] = torch.softmax(s[m], 0) @ v[b, h // G, :n].double()
    return out, lse


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_torch_path_matches_naive_formula(case):
    B, HQ, HKV, M, N, D, lens, with_mask = CASES[case]
    q, k, v, kv_lens, mask = _inputs(B, HQ, HKV, M, N, D, lens, with_mask, torch.float32)
    k, v = (t.transpose(1, 2).contiguous().transpose(1, 2) for t in (k, v))  # heads split off [B, N, H*d]
    out_naive, lse_naive = _naive(q, k, v, kv_lens, mask, 0.3)
    out, lse = cross_attention(q, k, v, kv_lens=kv_lens, mask=mask, scale=0.3, impl="torch", return_lse=True)
    out_sdpa = cross_attention(q, k, v, kv_lens=kv_lens, mask=mask, scale=0.3, impl="torch")
    torch.testing.assert_close(out.double(), out_naive, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_sdpa.double(), out_naive, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(lse.double(), lse_naive, atol=1e-5, rtol=1e-5)


def test_lse_without_the_private_cpu_op_matches_naive_formula(monkeypatch):
    """The explicit fallback (torch builds without SDPA's private CPU lse op), on strided head views."""
    from longwatch.kernels import attention

    monkeypatch.setattr(attention, "_cpu_flash_op", lambda: None)
    for case, (B, HQ, HKV, M, N, D, lens, with_mask) in CASES.items():
        q, k, v, kv_lens, mask = _inputs(B, HQ, HKV, M, N, D, lens, with_mask, torch.float32)
        k, v = (t.transpose(1, 2).contiguous().transpose(1, 2) for t in (k, v))  # [B, N, H, d] memory
        out_naive, lse_naive = _naive(q, k, v, kv_lens, mask, 0.3)
        out, lse = cross_attention(q, k, v, kv_lens=kv_lens, mask=mask, scale=0.3, impl="torch", return_lse=True)
        torch.testing.assert_close(out.double(), out_naive, atol=1e-5, rtol=1e-5, msg=case)
        torch.testing.assert_close(lse.double(), lse_naive, atol=1e-5, rtol=1e-5, msg=case)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_triton_matches_reference(case, dtype):
    B, HQ, HKV, M, N, D, lens, with_mask = CASES[case]
    q, k, v, kv_lens, mask = _inputs(B, HQ, HKV, M, N, D, lens, with_mask, dtype)
    gold, gold_lse = cross_attention_ref(*_fp32(q, k, v), kv_lens=kv_lens, mask=mask, return_lse=True)
    same, same_lse = cross_attention_ref(q, k, v, kv_lens=kv_lens, mask=mask, return_lse=True, upcast=False)
    out, lse = cross_attention(q, k, v, kv_lens=kv_lens, mask=mask, impl="triton", return_lse=True)
    assert out.dtype == dtype and out.shape == q.shape and lse.shape == (B, HQ, M)
    assert_within_rule(f"{case} {dtype} out", out, same, gold, FLOOR[dtype])

    # Queries with no visible key: exactly zero output and lse = -inf, on both paths.
    empty = torch.isneginf(gold_lse)
    assert torch.equal(torch.isneginf(lse), empty) and torch.equal(torch.isneginf(same_lse), empty)
    assert out.float()[empty].abs().max().item() == 0.0 if empty.any() else True
    fin = ~empty
    assert_within_rule(f"{case} {dtype} lse", lse[fin], same_lse[fin], gold_lse[fin], 1e-5)


def test_lengths_zero_and_one_give_zeros_and_the_single_value():
    q, k, v = torch.randn(2, 2, 3, 32), torch.randn(2, 2, 9, 32), torch.randn(2, 2, 9, 32)
    lens = torch.tensor([0, 1])
    for impl in ("torch", "triton"):
        out, lse = cross_attention(q, k, v, kv_lens=lens, impl=impl, return_lse=True)
        assert torch.isneginf(lse[0]).all()
        for o in (out, cross_attention(q, k, v, kv_lens=lens, impl=impl)):
            assert torch.equal(o[0], torch.zeros_like(o[0]))
            # One visible key: softmax weight 1, so the output is that key's value (up to rounding).
            torch.testing.assert_close(o[1], v[1, :, :1].expand(2, 3, 32))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=str)
def test_packed_offsets_equal_padded_lengths(dtype):
    lens = [5, 0, 130, 1]
    B, HQ, HKV, M, D = len(lens), 6, 3, 4, 64
    q = torch.randn(B, HQ, M, D).to(dtype)
    k_pad, v_pad = torch.randn(B, HKV, max(lens), D).to(dtype), torch.randn(B, HKV, max(lens), D).to(dtype)
    k_packed = torch.cat([k_pad[b, :, :n] for b, n in enumerate(lens)], 1)
    v_packed = torch.cat([v_pad[b, :, :n] for b, n in enumerate(lens)], 1)
    offsets = torch.tensor([0, *torch.tensor(lens).cumsum(0).tolist()])
    mask = torch.rand(B, M, max(lens)) > 0.5
    gold = cross_attention_ref(*_fp32(q, k_pad, v_pad), kv_lens=torch.tensor(lens), mask=mask)
    same = cross_attention_ref(q, k_packed, v_packed, kv_offsets=offsets, mask=mask, upcast=False)
    assert_within_rule("packed torch vs padded", same, same, gold, FLOOR[dtype] * 2)
    out = cross_attention(q, k_packed, v_packed, kv_offsets=offsets, mask=mask, impl="triton")
    assert_within_rule(f"packed {dtype}", out, same, gold, FLOOR[dtype])


def test_custom_scale_broadcast_mask_and_strided_heads():
    # Heads split off a [B, L, H*d] projection: strided [B, H, L, d] views, as the encoder passes them.
    q, k, v = (torch.randn(2, n, 4, 64).transpose(1, 2) for n in (3, 33, 33))
    key_mask = (torch.arange(33) % 3 != 0)[None, None, :]  # [1, 1, N] broadcasts over B and M
    gold = cross_attention_ref(q, k, v, mask=key_mask, scale=0.05)
    torch.testing.assert_close(cross_attention(q, k, v, mask=key_mask, scale=0.05, impl="triton"), gold)
    # Masking keys out equals dropping them.
    torch.testing.assert_close(gold, cross_attention_ref(q, k[:, :, key_mask[0, 0]], v[:, :, key_mask[0, 0]],
                                                         scale=0.05))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_compiled_kernels_on_cuda_match_reference(dtype):
    """The same rule on a GPU, compiled (run: TRITON_INTERPRET=0 pytest -m gpu tests/test_kernels_*)."""
    from longwatch.kernels import _attn_triton, pool_spatial, pool_spatial_ref

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    if _attn_triton.INTERPRET:
        pytest.skip("kernels were defined under TRITON_INTERPRET=1; run with TRITON_INTERPRET=0")
    for case, (B, HQ, HKV, M, N, D, lens, with_mask) in CASES.items():
        q, k, v, kv_lens, mask = (t.cuda() if t is not None else None
                                  for t in _inputs(B, HQ, HKV, M, N, D, lens, with_mask, dtype))
        gold = cross_attention_ref(*_fp32(q, k, v), kv_lens=kv_lens, mask=mask)
        same = cross_attention_ref(q, k, v, kv_lens=kv_lens, mask=mask, upcast=False)
        out = cross_attention(q, k, v, kv_lens=kv_lens, mask=mask)  # auto takes Triton on CUDA
        assert_within_rule(f"cuda {case} {dtype}", out, same, gold, FLOOR[dtype])
    x = torch.randn(2, 3, 27, 27, 80, device="cuda", dtype=dtype)
    assert_within_rule(f"cuda pool {dtype}", pool_spatial(x, (8, 8)), pool_spatial_ref(x, (8, 8), upcast=False),
                       pool_spatial_ref(x.float(), (8, 8)), FLOOR[dtype])
