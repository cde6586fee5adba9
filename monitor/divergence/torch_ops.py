"""Torch implementations of the heavy divergence computations (imported only for torch)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from monitor.divergence.backend import Backend, PairFunction
from monitor.divergence.pooled import add_tile

#: Values held per feature batch of ``ks_wasserstein_batched`` (padded reference + window).
BATCH_VALUES = 1 << 24


def _dtype(backend: Backend) -> torch.dtype:
    return torch.float64 if backend.dtype == "float64" else torch.float32


@torch.inference_mode()
def pooled_forms(
    pooled: np.ndarray,
    indicators: np.ndarray,
    pair: PairFunction,
    bandwidth: float,
    backend: Backend,
    block_rows: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The torch twin of ``kernels.pooled_forms``: uᵀKu, uᵀK1 per split u, and 1ᵀK1.

    As there, reductions after the tile-by-indicators product are in float64.
    """
    if block_rows < 1:
        raise ValueError(f"block_rows must be positive, got {block_rows}")
    device = torch.device(backend.device)
    z = torch.as_tensor(pooled, dtype=_dtype(backend), device=device)
    norms = (z * z).sum(dim=1)
    with_ones = torch.ones(len(z), indicators.shape[1] + 1, dtype=z.dtype, device=device)
    with_ones[:, :-1] = torch.as_tensor(indicators, device=device)
    split = with_ones[:, :-1].double()
    quadratic = torch.zeros(split.shape[1], dtype=torch.float64, device=device)
    linear = torch.zeros_like(quadratic)
    total = torch.zeros(1, dtype=torch.float64, device=device)
    buffer = torch.empty(min(block_rows, len(z)) ** 2, dtype=z.dtype, device=device)
    for start in range(0, len(z), block_rows):
        rows = slice(start, start + block_rows)
        for col in range(start, len(z), block_rows):
            cols = slice(col, col + block_rows)
            tile = _tile(z[rows], z[cols], norms[rows], norms[cols], pair, bandwidth, buffer)
            if col == start:
                tile.fill_diagonal_(0)
            product = (tile @ with_ones[cols]).double()
            inner = (split[rows] * product[:, :-1]).sum(dim=0)
            add_tile((quadratic, linear, total), inner, split[rows], product, col == start)
    return quadratic.cpu().numpy(), linear.cpu().numpy(), total.cpu().numpy()


def _tile(
    a: torch.Tensor,
    b: torch.Tensor,
    a_norms: torch.Tensor,
    b_norms: torch.Tensor,
    pair: PairFunction,
    bandwidth: float,
    buffer: torch.Tensor,
) -> torch.Tensor:
    tile = buffer[: len(a) * len(b)].view(len(a), len(b))
    if pair == "distance":
        torch.addmm(b_norms[None, :], a, b.T, alpha=-2.0, out=tile)
        return tile.add_(a_norms[:, None]).clamp_(min=0).sqrt_()
    # -|a - b|² / (2 σ²), scaled inside the product to save a pass over the tile.
    scale = -0.5 / bandwidth**2
    torch.addmm(scale * b_norms[None, :], a, b.T, alpha=-2.0 * scale, out=tile)
    return tile.add_(scale * a_norms[:, None]).clamp_(max=0).exp_()


def mlp_scores(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    backend: Backend,
    hidden: int = 32,
    epochs: int = 10,
    batch_size: int = 512,
    learning_rate: float = 1e-2,
    weight_decay: float = 1e-4,
    seed: int = 0,
) -> np.ndarray:
    """Logits on ``test_x`` of a one-hidden-layer ReLU MLP trained with Adam (seeded)."""
    device = torch.device(backend.device)
    dtype = _dtype(backend)
    generator = torch.Generator(device=device).manual_seed(seed)
    x = torch.as_tensor(train_x, dtype=dtype, device=device)
    y = torch.as_tensor(train_y, dtype=dtype, device=device)
    bound_in, bound_hidden = 1 / np.sqrt(x.shape[1]), 1 / np.sqrt(hidden)
    parameters = [
        _uniform((x.shape[1], hidden), bound_in, generator, dtype, device),
        _uniform((hidden,), bound_in, generator, dtype, device),
        _uniform((hidden,), bound_hidden, generator, dtype, device),
        _uniform((1,), bound_hidden, generator, dtype, device),
    ]
    moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in parameters]
    step = 0
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator, device=device)
        for batch in order.split(batch_size):
            logits = _mlp(x[batch], parameters)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y[batch])
            step += 1
            _adam_step(
                parameters,
                torch.autograd.grad(loss, parameters),
                moments,
                step,
                learning_rate,
                weight_decay,
            )
    with torch.inference_mode():
        test = torch.as_tensor(test_x, dtype=dtype, device=device)
        return _mlp(test, parameters).double().cpu().numpy()


@torch.no_grad()
def _adam_step(
    parameters: list[torch.Tensor],
    gradients: tuple[torch.Tensor, ...],
    moments: list[tuple[torch.Tensor, torch.Tensor]],
    step: int,
    learning_rate: float,
    weight_decay: float,
) -> None:
    # Adam (Kingma & Ba) with L2 weight decay, as torch.optim.Adam computes it; written out
    # because the first torch.optim optimizer imports torch._dynamo (seconds, and memory).
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for parameter, gradient, (first, second) in zip(parameters, gradients, moments, strict=True):
        gradient = gradient + weight_decay * parameter
        first.mul_(beta1).add_(gradient, alpha=1 - beta1)
        second.mul_(beta2).addcmul_(gradient, gradient, value=1 - beta2)
        denominator = (second / (1 - beta2**step)).sqrt_().add_(eps)
        parameter.addcdiv_(first, denominator, value=-learning_rate / (1 - beta1**step))


def _uniform(
    shape: tuple[int, ...],
    bound: float,
    generator: torch.Generator,
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    values = torch.rand(shape, generator=generator, dtype=dtype, device=device)
    return (values * 2 * bound - bound).requires_grad_()


def _mlp(x: torch.Tensor, parameters: list[torch.Tensor]) -> torch.Tensor:
    w1, b1, w2, b2 = parameters
    return torch.relu(x @ w1 + b1) @ w2 + b2


@torch.inference_mode()
def ks_wasserstein_batched(
    ref_sorted: list[np.ndarray], windows: list[np.ndarray], backend: Backend
) -> list[tuple[float, float]]:
    """(KS statistic, Wasserstein-1) per feature, from sorted reference and raw window values.

    Features are padded with +inf into 2-D tensors, a batch at a time, and compared with
    ``torch.sort`` and ``torch.searchsorted``; values must be finite.
    """
    if len(ref_sorted) != len(windows):
        raise ValueError("need one window per reference feature")
    results: list[tuple[float, float]] = []
    for batch in _batches(ref_sorted, windows):
        results.extend(_ks_wasserstein(batch, ref_sorted, windows, backend))
    return results


def _batches(ref_sorted: list[np.ndarray], windows: list[np.ndarray]) -> Iterator[range]:
    start = 0
    while start < len(ref_sorted):
        stop, widest = start, 0
        while stop < len(ref_sorted):
            widest = max(widest, ref_sorted[stop].size + windows[stop].size)
            if stop > start and (stop - start + 1) * widest > BATCH_VALUES:
                break
            stop += 1
        yield range(start, stop)
        start = stop


def _ks_wasserstein(
    batch: range, ref_sorted: list[np.ndarray], windows: list[np.ndarray], backend: Backend
) -> list[tuple[float, float]]:
    device, dtype = torch.device(backend.device), _dtype(backend)
    ref = _padded([ref_sorted[i] for i in batch], dtype, device)
    window = torch.sort(_padded([windows[i] for i in batch], dtype, device), dim=1).values
    n_ref = torch.tensor([ref_sorted[i].size for i in batch], device=device)
    n_window = torch.tensor([windows[i].size for i in batch], device=device)
    if bool((n_ref == 0).any() or (n_window == 0).any()):
        raise ValueError("cannot compare empty samples")
    merged = torch.sort(torch.cat([ref, window], dim=1), dim=1).values
    cdf_ref = torch.searchsorted(ref, merged, right=True).to(dtype) / n_ref[:, None]
    cdf_window = torch.searchsorted(window, merged, right=True).to(dtype) / n_window[:, None]
    gaps = (cdf_ref - cdf_window).abs()
    position = torch.arange(merged.shape[1], device=device)[None, :]
    size = (n_ref + n_window)[:, None]
    ks = torch.where(position < size, gaps, 0).amax(dim=1)
    widths = merged[:, 1:] - merged[:, :-1]
    areas = torch.where(position[:, :-1] < size - 1, gaps[:, :-1] * widths, 0)
    return list(zip(ks.double().tolist(), areas.double().sum(dim=1).tolist(), strict=True))


def _padded(arrays: list[np.ndarray], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    padded = torch.full((len(arrays), max(a.size for a in arrays)), torch.inf, dtype=dtype)
    for row, values in enumerate(arrays):
        padded[row, : values.size] = torch.as_tensor(values, dtype=dtype)
    return padded.to(device)
