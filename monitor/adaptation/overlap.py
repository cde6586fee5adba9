"""The support-overlap check that sees products of features: is a re-weighting hypothesis in doubt?

The gate's domain classifier models each feature and its square. That sees moved means and
variances, not a change of how features move together: two sensors swapped (or rotated) put target
rows where the source has almost none, while every feature alone, and its square, looks like a
re-weighted source. A second cross-fitted classifier that also sees the pairwise products calls a
target row off the source support when its odds of being target exceed 9 (balanced probability
above ``CONFIDENCE``). Under a re-weighting hypothesis (covariate or label shift) the density ratio
is bounded where the target has mass, so almost no rows are: on the seeded tasks of
``monitor.adaptation.tasks`` (20 seeds × 2 and 3 classes, 4,000 rows per domain) at most 0.05% of
the rows under covariate shift and 0.08% under label shift, none with no shift or a subspace flip,
and 0.05%–31% with two sensors swapped. More than ``OFF_MAX`` (and at least ``MIN_ROWS`` rows)
makes the overlap unclear, and the gate reports its estimates as unknown. A rule of thumb fitted to
these tasks, not a guarantee.
"""

from __future__ import annotations

import numpy as np

from monitor.adaptation import density

#: Balanced probability of "target" above which a target row is off the source support (odds 9).
CONFIDENCE = 0.90
#: The overlap is unclear when more than this share of the target rows is off the support ...
OFF_MAX = 0.003
#: ... and at least this many rows.
MIN_ROWS = 5
#: Products are taken among at most this many features: those whose means moved most, in pooled SDs.
PRODUCT_FEATURES = 24


def products_check(source: np.ndarray, target: np.ndarray, folds: int, seed: int,
                   checks: dict[str, float | str]) -> str | None:
    """Why support overlap is unclear (None: it is not); records ``products_auc`` and
    ``products_off_support_share`` in ``checks``."""
    if source.shape[1] > PRODUCT_FEATURES:
        pooled = np.vstack([source, target])
        moved = np.abs(target.mean(axis=0) - source.mean(axis=0)) / np.clip(pooled.std(axis=0), 1e-12, None)
        keep = np.sort(np.argsort(-moved, kind="stable")[:PRODUCT_FEATURES])
        source, target = source[:, keep], target[:, keep]
    fit = density.classifier_fit(source, target, folds=folds, seed=seed, products=True)
    share = fit.off_support_share(CONFIDENCE)
    checks["products_auc"], checks["products_off_support_share"] = fit.auc, share
    if share <= OFF_MAX or share * len(target) < MIN_ROWS:
        return None
    return (f"support overlap unclear: a domain classifier that also sees the products of the features finds "
            f"{share:.1%} of the target rows off the source support (odds above {CONFIDENCE / (1 - CONFIDENCE):.0f}, "
            f"AUC {fit.auc:.2f}), where a re-weighting of the source leaves almost none; p(y|x) may have changed "
            f"where no label-free method can see")
