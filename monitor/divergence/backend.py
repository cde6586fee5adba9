"""Compute backends: numpy (always present) or torch (optional, CPU or CUDA)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

BackendName = Literal["numpy", "torch"]
DType = Literal["float32", "float64"]
#: What a pooled matrix holds: the kernel ``exp(-|x - y|² / (2 σ²))`` (``gaussian``) or ``|x - y|`` (``distance``).
PairFunction = Literal["gaussian", "distance"]

_TORCH_MISSING = "the torch backend needs PyTorch: install driftd[torch]"


@dataclass(frozen=True)
class Backend:
    """Where and in which precision a measure computes."""

    name: BackendName
    device: str = "cpu"
    dtype: DType = "float64"


def resolve_backend(
    name: Literal["numpy", "torch", "auto"], device: str | None = None, dtype: str = "float64"
) -> Backend:
    """Turn a configured backend into a concrete one.

    ``auto`` picks torch on CUDA when torch is installed and sees a GPU (and ``device`` does not
    name the CPU), numpy otherwise: never torch on the CPU, which is slower than numpy for every
    built-in measure on the CPU (MMD at 10k x 10k x 64: 6.9 s against 4.8 s). ``torch`` without a
    device uses CUDA when available and the CPU else.
    """
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    precision = cast(DType, dtype)
    if name == "numpy":
        if device not in (None, "cpu"):
            raise ValueError(f"the numpy backend runs on the CPU only, got device {device!r}")
        return Backend("numpy", "cpu", precision)
    if name == "auto":
        torch = _import_torch()
        on_gpu = device is None or torch is None or torch.device(device).type == "cuda"
        if torch is not None and on_gpu and torch.cuda.is_available():
            return Backend("torch", device or "cuda", precision)
        return Backend("numpy", "cpu", precision)
    if name == "torch":
        torch = _import_torch()
        if torch is None:
            raise ImportError(_TORCH_MISSING)
        chosen = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if torch.device(chosen).type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {chosen!r} requested but torch sees no CUDA device")
        return Backend("torch", chosen, precision)
    raise ValueError(f"backend must be 'numpy', 'torch' or 'auto', got {name!r}")


def _import_torch() -> Any:
    try:
        import torch
    except ImportError:
        return None
    return torch


#: The default backend.
NUMPY = Backend("numpy")
