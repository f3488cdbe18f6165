"""Pooling and cross-attention: Triton kernels, pure-torch references, one dispatcher per op.

Nothing here touches CUDA at import; depends on nothing else of ours.

| function | what | covered by |
|---|---|---|
| `pool_spatial(x, out_hw, *, grid=None, impl)` | adaptive average of [..., H, W, D] (or [..., H*W, D] + grid) to (h, w); autograd | tests/test_kernels_pooling.py |
| `pool_temporal(x, t_out, *, dim=-4, impl)` | adaptive average along time; autograd | tests/test_kernels_pooling.py |
| `cross_attention(q, k, v, *, kv_lens, kv_offsets, mask, scale, impl, return_lse)` | flash-style softmax(qk^T)v, grouped heads, variable-length keys | tests/test_kernels_attention.py |
| `pool_spatial_ref`, `pool_temporal_ref`, `cross_attention_ref` (`upcast=`) | pure-torch paths (channels-last F.adaptive_avg_pool2d; SDPA, lse from its CPU kernel) | both files, against naive formulas |
| `KernelUnavailable` | raised when impl="triton" cannot run here | tests/test_kernels_dispatch.py |

impl="auto" takes Triton for CUDA tensors when triton imports, torch otherwise; impl="triton" on CPU
tensors needs TRITON_INTERPRET=1 set before the Triton modules (`_pool_triton`, `_attn_triton`) load,
else it raises KernelUnavailable. Speed: benchmarks/kernels.py. GPU check: TRITON_INTERPRET=0 pytest -m gpu.
"""

from ._dispatch import KernelUnavailable
from .attention import cross_attention, cross_attention_ref
from .pooling import pool_spatial, pool_spatial_ref, pool_temporal, pool_temporal_ref

__all__ = [
    "KernelUnavailable",
    "cross_attention",
    "cross_attention_ref",
    "pool_spatial",
    "pool_spatial_ref",
    "pool_temporal",
    "pool_temporal_ref",
]
