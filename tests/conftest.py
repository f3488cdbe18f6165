"""Shared test setup: Triton's CPU interpreter, one seed, offline hubs, small thread pools.

TRITON_INTERPRET must be set before any `@triton.jit` function is defined, hence at conftest import.
"""

from __future__ import annotations

import os
import random

os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a model hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import pytest

SEED = 1234


@pytest.fixture(autouse=True)
def seed() -> int:
    """Every test starts from the same RNG state."""
    random.seed(SEED)
    np.random.seed(SEED)
    try:
        import torch
    except ImportError:
        return SEED
    torch.manual_seed(SEED)
    return SEED
