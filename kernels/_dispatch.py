"""Backend choice for every kernel op: one place decides whether Triton can run for given tensors.

Triton is imported lazily and guarded, so `import longwatch.kernels` never needs triton or CUDA.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Literal

import torch

from longwatch.optional import install_hint

Impl = Literal["auto", "triton", "torch"]
IMPLS = ("auto", "triton", "torch")


class KernelUnavailable(RuntimeError):
    """An explicitly requested backend cannot run for these tensors on this machine."""


def triton_module(name: str) -> ModuleType | None:
    """Import `longwatch.kernels.<name>` (a Triton module) or return None when triton is missing.

    The import defines the @triton.jit functions, which is when triton fixes interpreter vs compiler.
    """
    try:
        return importlib.import_module(f"{__package__}.{name}")
    except ImportError:
        return None


def choose_impl(op: str, impl: str, module_name: str, **tensors: torch.Tensor) -> ModuleType | None:
    """Return the Triton module to use for `op` on the named tensors, or None for the torch path.

    auto: Triton for CUDA tensors when triton imports and the module takes them (dtype, layout), torch
    otherwise (CPU tensors always take torch, even under the interpreter: it is a debugging tool).
    triton: Triton, or KernelUnavailable naming why it cannot run here, or the module's error naming
    the tensor it cannot take.
    """
    module = _triton_for(op, impl, module_name, {t.device.type for t in tensors.values()})
    for name, t in tensors.items():
        error = module.problem(name, t) if module is not None else None
        if error is not None:
            if impl == "auto":
                return None
            raise error
    return module


def _triton_for(op: str, impl: str, module_name: str, devices: set[str]) -> ModuleType | None:
    if impl not in IMPLS:
        raise ValueError(f"{op}: impl must be one of {IMPLS}, got {impl!r}")
    if impl == "torch":
        return None
    if impl == "auto":
        if devices != {"cuda"}:
            return None
        return triton_module(module_name)
    module = triton_module(module_name)
    if module is None:
        raise KernelUnavailable(
            f"{op}: impl='triton' but triton does not import; install it ({install_hint('triton')}) "
            "or use impl='auto'/'torch'"
        )
    if devices == {"cuda"}:
        return module
    # Read from the module, not the environment: its kernels were built in the mode the env had then.
    if devices == {"cpu"} and module.INTERPRET:
        return module
    if devices == {"cpu"}:
        raise KernelUnavailable(
            f"{op}: impl='triton' got CPU tensors but the Triton kernels were defined without "
            "TRITON_INTERPRET=1; move the tensors to a CUDA device, set TRITON_INTERPRET=1 before "
            "importing longwatch.kernels' Triton modules, or use impl='auto'/'torch'"
        )
    raise KernelUnavailable(
        f"{op}: impl='triton' needs all tensors on one CUDA device (or CPU under TRITON_INTERPRET=1), "
        f"got devices {sorted(devices)}; use impl='auto'/'torch'"
    )
