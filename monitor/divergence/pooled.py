"""The one accumulation step of a pooled-matrix permutation test, shared by the numpy and torch kernels.

Works on numpy arrays and torch tensors alike (in-place ``+=``, ``@``, ``.sum(0)``).
"""

from __future__ import annotations

from typing import Any


def add_tile(forms: tuple[Any, Any, Any], inner: Any, split_rows: Any, product: Any, on_diagonal: bool) -> None:
    """Add one tile of the upper triangle of K to (uᵀKu, uᵀK1, 1ᵀK1), in place.

    ``product`` is the tile times the indicators with a column of ones appended, ``inner`` the
    per-split uᵀ(tile)u part of it, ``split_rows`` the tile's rows of the indicators. A tile off the
    diagonal stands for its mirror image below it too, so it counts twice.
    """
    quadratic, linear, total = forms
    sums = product[:, -1]
    linear += split_rows.T @ sums
    if on_diagonal:
        quadratic += inner
        total += sums.sum()
    else:
        quadratic += 2 * inner
        linear += product[:, :-1].sum(0)
        total += 2 * sums.sum()
