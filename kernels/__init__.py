"""Pooling and cross-attention: Triton kernels, pure-torch references, one dispatcher per op.

Nothing here touches CUDA at import; depends on nothing else of ours.
"""
