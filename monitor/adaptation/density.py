"""Density ratios between a source and a target sample, and class-prior ratios under label shift.

``w(x) = p_target(x) / p_source(x)`` evaluated on given rows, by three estimators:

* a cross-fitted probabilistic domain classifier: L2 logistic regression (damped Newton steps)
  on standardised features and their squares (so that variance changes are seen), trained with
  both domains balanced, so the odds p/(1-p) of a row held out of the fit are its density ratio;
* uLSIF (Kanamori, Hido and Sugiyama 2009): a Gaussian-kernel model of w fitted in closed form
  by least squares, bandwidth and ridge chosen by k-fold cross-validation of the squared loss;
* KLIEP (Sugiyama et al. 2008): the same kernel model fitted by maximising the target
  log-likelihood under the source normalisation, by projected gradient ascent.

Plus clipping and normalisation of weights, their effective sample size, the cross-fitted
domain AUC (how well the two samples can be told apart, one of them optionally re-weighted),
and the target class priors under label shift: EM (Saerens et al. 2002) on posteriors
calibrated with bias-corrected temperature scaling (Alexandari et al. 2020), or BBSE
(Lipton et al. 2018) from the confusion matrix of hard predictions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.optimize import minimize, nnls
from scipy.special import expit, log_softmax, softmax

#: How many standard deviations a standardised feature may reach before squaring (outlier guard).
_Z_LIMIT = 8.0
#: The uLSIF ridge strengths tried by cross-validation.
_RIDGES = (1e-3, 1e-2, 1e-1, 1.0)


@dataclass(frozen=True)
class DomainFit:
    """Out-of-fold domain-classifier output: density ratios at every source and target row, and the AUC."""

    source_ratio: np.ndarray
    target_ratio: np.ndarray
    auc: float

    def off_support_share(self, confidence: float = 0.95) -> float:
        """Share of target rows called target with balanced probability above ``confidence``."""
        return float(np.mean(self.target_ratio > confidence / (1.0 - confidence)))


def classifier_fit(source: np.ndarray, target: np.ndarray, source_weight: np.ndarray | None = None,
                   folds: int = 5, l2: float = 1e-3, seed: int = 0, products: bool = False) -> DomainFit:
    """Cross-fit a domain classifier (source vs target); each row is scored by a fit that did not see it.

    ``source_weight`` re-weights the source rows (e.g. by class-prior ratios), so the ratios and
    the AUC are those between the re-weighted source and the target. ``products`` adds the pairwise
    products of the standardised features to the design (what a swap or a rotation of features changes).
    """
    source, target = _as_matrix(source), _as_matrix(target)
    _require_rows(source, target)
    design = _quadratic_design(np.vstack([source, target]), products)
    is_target = np.r_[np.zeros(len(source)), np.ones(len(target))]
    weight = np.r_[_balanced(source_weight, len(source)), _balanced(None, len(target))]
    fold = _fold_ids(len(source), len(target), folds, seed)
    logit = np.empty(len(design))
    for k in range(max(fold) + 1):
        held = fold == k
        coef = _fit_logistic(design[~held], is_target[~held], weight[~held], l2)
        logit[held] = design[held] @ coef[:-1] + coef[-1]
    ratio = np.exp(np.clip(logit, -50.0, 50.0))
    n_source = len(source)
    auc = weighted_auc(logit[n_source:], logit[:n_source], weight[:n_source])
    return DomainFit(ratio[:n_source], ratio[n_source:], auc)


def classifier_ratio(source: np.ndarray, target: np.ndarray, folds: int = 5, l2: float = 1e-3,
                     seed: int = 0) -> np.ndarray:
    """Cross-fitted domain-classifier density ratios at the source rows."""
    return classifier_fit(source, target, folds=folds, l2=l2, seed=seed).source_ratio


def domain_auc(source: np.ndarray, target: np.ndarray, source_weight: np.ndarray | None = None,
               folds: int = 5, seed: int = 0) -> float:
    """Cross-fitted AUC of telling target rows from (optionally re-weighted) source rows; 0.5 = alike."""
    return classifier_fit(source, target, source_weight, folds=folds, seed=seed).auc


def auc_null_se(n_source: float, n_target: float) -> float:
    """Standard error of an AUC between two samples of the same distribution (Mann-Whitney)."""
    return float(np.sqrt((n_source + n_target + 1.0) / (12.0 * n_source * n_target)))


def weighted_auc(positive: np.ndarray, negative: np.ndarray, negative_weight: np.ndarray | None = None) -> float:
    """P(score of a positive row > score of a negative row), negatives weighted, ties counted half."""
    weight = np.ones(len(negative)) if negative_weight is None else np.asarray(negative_weight, dtype=float)
    order = np.argsort(negative, kind="stable")
    scores = np.asarray(negative)[order]
    cumulative = np.r_[0.0, np.cumsum(weight[order])]
    below = cumulative[np.searchsorted(scores, positive, side="left")]
    up_to = cumulative[np.searchsorted(scores, positive, side="right")]
    return float(np.sum(below + 0.5 * (up_to - below)) / (len(positive) * cumulative[-1]))


def ulsif_ratio(source: np.ndarray, target: np.ndarray, at: np.ndarray | None = None, centres: int = 100,
                folds: int = 5, seed: int = 0) -> np.ndarray:
    """uLSIF density ratios at ``at`` (default: the source rows); w ≥ 0 by clipping the kernel weights."""
    source, target = _as_matrix(source), _as_matrix(target)
    _require_rows(source, target)
    rng = np.random.default_rng(seed)
    scaled, centre_rows = _kernel_space(source, target, centres, rng)
    folds = max(2, min(folds, len(source), len(target)))
    fold = (rng.permutation(len(source)) % folds, rng.permutation(len(target)) % folds)
    best: tuple[float, float, float] | None = None
    for sigma in _bandwidths(centre_rows):
        phi_s, phi_t = _gauss(scaled[0], centre_rows, sigma), _gauss(scaled[1], centre_rows, sigma)
        for ridge, loss in zip(_RIDGES, _ulsif_cv(phi_s, phi_t, fold)):
            if best is None or loss < best[0]:
                best = (loss, sigma, ridge)
    assert best is not None
    _, sigma, ridge = best
    phi_s, phi_t = _gauss(scaled[0], centre_rows, sigma), _gauss(scaled[1], centre_rows, sigma)
    alpha = np.maximum(_ulsif_alpha(phi_s, phi_t, ridge), 0.0)
    return _gauss(_rescale(source, target, at), centre_rows, sigma) @ alpha


def kliep_ratio(source: np.ndarray, target: np.ndarray, at: np.ndarray | None = None, centres: int = 100,
                folds: int = 5, seed: int = 0) -> np.ndarray:
    """KLIEP density ratios at ``at`` (default: the source rows), bandwidth by held-out target likelihood."""
    source, target = _as_matrix(source), _as_matrix(target)
    _require_rows(source, target)
    rng = np.random.default_rng(seed)
    scaled, centre_rows = _kernel_space(source, target, centres, rng)
    fold = rng.permutation(len(target)) % max(2, min(folds, len(target)))
    best: tuple[float, float] | None = None
    for sigma in _bandwidths(centre_rows):
        phi_s, phi_t = _gauss(scaled[0], centre_rows, sigma), _gauss(scaled[1], centre_rows, sigma)
        mean_s = phi_s.mean(axis=0)
        score = 0.0
        for k in range(max(fold) + 1):
            alpha = _kliep_alpha(phi_t[fold != k], mean_s)
            score += float(np.mean(np.log(np.maximum(phi_t[fold == k] @ alpha, 1e-300))))
        if best is None or score > best[0]:
            best = (score, sigma)
    assert best is not None
    sigma = best[1]
    alpha = _kliep_alpha(_gauss(scaled[1], centre_rows, sigma), _gauss(scaled[0], centre_rows, sigma).mean(axis=0))
    return _gauss(_rescale(source, target, at), centre_rows, sigma) @ alpha


def normalise(weights: np.ndarray) -> np.ndarray:
    """Weights scaled to mean 1 (all-zero weights become all ones)."""
    weights = np.asarray(weights, dtype=float)
    total = weights.mean() if len(weights) else 0.0
    return np.ones_like(weights) if total <= 0 else weights / total


def clip_weights(weights: np.ndarray, max_weight: float) -> tuple[np.ndarray, float]:
    """Weights with mean 1 and none above ``max_weight``, and the share of rows held at the cap."""
    if max_weight <= 1.0:
        raise ValueError(f"max_weight must be above 1 (got {max_weight})")
    clipped = normalise(weights)
    for _ in range(50):  # renormalising lifts the others; repeat until no weight is over the cap
        if clipped.max(initial=0.0) <= max_weight * (1 + 1e-9):
            break
        clipped = normalise(np.minimum(clipped, max_weight))
    return clipped, float(np.mean(clipped >= max_weight * (1 - 1e-9)))


def effective_sample_size(weights: np.ndarray) -> float:
    """(Σw)² / Σw²: how many unweighted rows the weighted sample is worth."""
    weights = np.asarray(weights, dtype=float)
    square = float(np.sum(weights**2))
    return 0.0 if square == 0 else float(np.sum(weights)) ** 2 / square


def ess_share(weights: np.ndarray) -> float:
    """The effective sample size as a share of the rows (1 = unweighted)."""
    return effective_sample_size(weights) / max(len(weights), 1)


def class_priors(labels_index: np.ndarray, n_classes: int) -> np.ndarray:
    """Class frequencies of integer labels 0..n_classes-1."""
    return np.bincount(labels_index, minlength=n_classes) / max(len(labels_index), 1)


def estimate_target_priors(proba_source: np.ndarray, labels_index: np.ndarray, proba_target: np.ndarray,
                           method: Literal["em", "bbse"] = "em", calibrate: bool = True,
                           ridge: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """Source priors (label frequencies) and estimated target priors, under label shift.

    ``proba_source`` are the model's posteriors on labelled source rows (labels as indices into
    the columns), ``proba_target`` its posteriors on target rows.
    """
    n_classes = proba_source.shape[1]
    source_priors = class_priors(labels_index, n_classes)
    if method == "bbse":
        return source_priors, bbse_priors(proba_source, labels_index, proba_target, ridge)
    if calibrate:
        temperature, bias = fit_calibration(proba_source, labels_index)
        proba_source = apply_calibration(proba_source, temperature, bias)
        proba_target = apply_calibration(proba_target, temperature, bias)
    # EM's fixed point is relative to the priors the posteriors imply on the source
    implied = np.clip(proba_source.mean(axis=0), 1e-12, None)
    ratios = em_prior_ratios(proba_target, implied)
    return source_priors, _normalised(source_priors * ratios)


def em_prior_ratios(proba_target: np.ndarray, source_priors: np.ndarray, max_iter: int = 1000,
                    tol: float = 1e-8) -> np.ndarray:
    """Saerens et al. (2002) EM: the ratios q/p that make re-weighted posteriors average to q."""
    source_priors = np.clip(np.asarray(source_priors, dtype=float), 1e-12, None)
    target = source_priors.copy()
    for _ in range(max_iter):
        posterior = proba_target * (target / source_priors)
        posterior /= np.clip(posterior.sum(axis=1, keepdims=True), 1e-300, None)
        updated = posterior.mean(axis=0)
        if np.max(np.abs(updated - target)) < tol:
            target = updated
            break
        target = updated
    return target / source_priors


def bbse_priors(proba_source: np.ndarray, labels_index: np.ndarray, proba_target: np.ndarray,
                ridge: float = 1e-4) -> np.ndarray:
    """Lipton et al. (2018) BBSE: solve C w = μ for w ≥ 0 (ridge towards w = 1); q = w·p normalised.

    C[i, j] = P_source(predicted i, true j) from hard predictions on the labelled source rows,
    μ[i] = P_target(predicted i).
    """
    n_classes = proba_source.shape[1]
    predicted = np.argmax(proba_source, axis=1)
    confusion = np.zeros((n_classes, n_classes))
    np.add.at(confusion, (predicted, labels_index), 1.0)
    confusion /= max(len(labels_index), 1)
    mu = np.bincount(np.argmax(proba_target, axis=1), minlength=n_classes) / max(len(proba_target), 1)
    root = np.sqrt(ridge * float(np.sum(confusion**2)))  # the ridge is relative to the size of C
    ratios, _ = nnls(np.vstack([confusion, root * np.eye(n_classes)]), np.r_[mu, root * np.ones(n_classes)])
    return _normalised(class_priors(labels_index, n_classes) * ratios)


def fit_calibration(proba: np.ndarray, labels_index: np.ndarray) -> tuple[float, np.ndarray]:
    """Bias-corrected temperature scaling: T and per-class biases b minimising the NLL of softmax(log p / T + b)."""
    logits = np.log(np.clip(proba, 1e-12, None))
    n_classes = proba.shape[1]
    rows = np.arange(len(labels_index))

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        inv_t, bias = np.exp(params[0]), params[1:]
        scaled = logits * inv_t + bias
        log_p = log_softmax(scaled, axis=1)
        residual = np.exp(log_p)
        residual[rows, labels_index] -= 1.0
        residual /= len(rows)
        grad_inv_t = float(np.sum(residual * logits)) * inv_t
        return float(-log_p[rows, labels_index].mean()), np.r_[grad_inv_t, residual.sum(axis=0)]

    params = minimize(loss, np.zeros(n_classes + 1), jac=True, method="L-BFGS-B").x
    return float(np.exp(-params[0])), params[1:]


def apply_calibration(proba: np.ndarray, temperature: float, bias: np.ndarray) -> np.ndarray:
    """Posteriors softmax(log p / T + b)."""
    return softmax(np.log(np.clip(proba, 1e-12, None)) / temperature + bias, axis=1)


def _normalised(priors: np.ndarray) -> np.ndarray:
    priors = np.clip(np.asarray(priors, dtype=float), 0.0, None)
    total = priors.sum()
    return np.full(len(priors), 1.0 / len(priors)) if total <= 0 else priors / total


def _as_matrix(rows: np.ndarray) -> np.ndarray:
    matrix = np.asarray(rows, dtype=float)
    return matrix.reshape(-1, 1) if matrix.ndim == 1 else matrix


def _require_rows(source: np.ndarray, target: np.ndarray) -> None:
    if len(source) < 2 or len(target) < 2:
        raise ValueError(f"density ratios need at least 2 source and 2 target rows "
                         f"(got {len(source)} and {len(target)})")


def _balanced(weight: np.ndarray | None, rows: int) -> np.ndarray:
    """Row weights that give a domain a total weight of 1/2 (times the row count, for scale)."""
    weight = np.ones(rows) if weight is None else np.clip(np.asarray(weight, dtype=float), 0.0, None)
    return weight / weight.sum() * 0.5 * rows


def _quadratic_design(rows: np.ndarray, products: bool = False) -> np.ndarray:
    """Standardised features and their centred squares (and, with ``products``, their centred pairwise products)."""
    scale = rows.std(axis=0)
    scaled = np.clip((rows - rows.mean(axis=0)) / np.where(scale > 0, scale, 1.0), -_Z_LIMIT, _Z_LIMIT)
    squares = scaled**2
    columns = [scaled, squares - squares.mean(axis=0)]
    if products:
        first, second = np.triu_indices(scaled.shape[1], 1)
        pairs = scaled[:, first] * scaled[:, second]
        columns.append(pairs - pairs.mean(axis=0))
    return np.hstack(columns)


def _fold_ids(n_source: int, n_target: int, folds: int, seed: int) -> np.ndarray:
    """Fold of each row, each domain spread evenly over the folds."""
    folds = max(2, min(folds, n_source, n_target))
    rng = np.random.default_rng(seed)
    return np.r_[rng.permutation(n_source) % folds, rng.permutation(n_target) % folds]


def _fit_logistic(design: np.ndarray, outcome: np.ndarray, weight: np.ndarray, l2: float,
                  iterations: int = 50) -> np.ndarray:
    """Weighted L2 logistic regression by damped Newton steps; coefficients with the (unpenalised) intercept last.

    A handful of Newton steps on so few coefficients is far cheaper than quasi-Newton's many small ones.
    """
    augmented = np.hstack([design, np.ones((len(design), 1))])
    share = weight / weight.sum()
    penalty = np.full(augmented.shape[1], l2)
    penalty[-1] = 1e-10  # keeps the Hessian invertible without pulling the intercept

    def loss(coef: np.ndarray) -> float:
        logit = augmented @ coef
        return float(share @ (np.logaddexp(0.0, logit) - outcome * logit)) + 0.5 * float(penalty @ coef**2)

    coef = np.zeros(augmented.shape[1])
    value = loss(coef)
    for _ in range(iterations):
        probability = expit(augmented @ coef)
        gradient = augmented.T @ (share * (probability - outcome)) + penalty * coef
        hessian = (augmented * (share * probability * (1.0 - probability))[:, None]).T @ augmented + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        scale = 1.0
        while scale > 1e-6:
            trial = coef - scale * step
            trial_value = loss(trial)
            if trial_value <= value:
                break
            scale *= 0.5
        else:
            break
        coef, improvement, value = trial, value - trial_value, trial_value
        if improvement < 1e-10:
            break
    return coef


def _kernel_space(source: np.ndarray, target: np.ndarray, centres: int,
                  rng: np.random.Generator) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """Both samples standardised with pooled statistics, and kernel centres drawn from the target."""
    scaled_s, scaled_t = _rescale(source, target, source), _rescale(source, target, target)
    pick = rng.choice(len(scaled_t), size=min(centres, len(scaled_t)), replace=False)
    return (scaled_s, scaled_t), scaled_t[pick]


def _rescale(source: np.ndarray, target: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
    pooled = np.vstack([source, target])
    scale = pooled.std(axis=0)
    rows = source if rows is None else _as_matrix(rows)
    return (rows - pooled.mean(axis=0)) / np.where(scale > 0, scale, 1.0)


def _bandwidths(centre_rows: np.ndarray) -> np.ndarray:
    """Gaussian widths around the median distance between centres."""
    distance = np.sqrt(np.maximum(_squared_distance(centre_rows, centre_rows), 0.0))
    median = float(np.median(distance[np.triu_indices(len(centre_rows), 1)])) if len(centre_rows) > 1 else 1.0
    return max(median, 1e-6) * np.array([0.25, 0.5, 1.0, 2.0])


def _squared_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a**2).sum(axis=1)[:, None] - 2.0 * a @ b.T + (b**2).sum(axis=1)[None, :]


def _gauss(rows: np.ndarray, centre_rows: np.ndarray, sigma: float) -> np.ndarray:
    return np.exp(-np.maximum(_squared_distance(rows, centre_rows), 0.0) / (2.0 * sigma**2))


def _ulsif_alpha(phi_s: np.ndarray, phi_t: np.ndarray, ridge: float) -> np.ndarray:
    """argmin ½ αᵀHα - hᵀα + ½ λ|α|²: H = mean φ_s φ_sᵀ, h = mean φ_t."""
    gram = phi_s.T @ phi_s / len(phi_s)
    return np.linalg.solve(gram + ridge * np.eye(len(gram)), phi_t.mean(axis=0))


def _ulsif_cv(phi_s: np.ndarray, phi_t: np.ndarray, fold: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Held-out uLSIF loss ½ mean w_s² - mean w_t over the folds, for each of ``_RIDGES``."""
    fold_s, fold_t = fold
    folds = int(fold_s.max()) + 1
    loss = np.zeros(len(_RIDGES))
    for k in range(folds):
        train_s = phi_s[fold_s != k]
        gram, mean_t = train_s.T @ train_s / len(train_s), phi_t[fold_t != k].mean(axis=0)
        for position, ridge in enumerate(_RIDGES):
            alpha = np.maximum(np.linalg.solve(gram + ridge * np.eye(len(gram)), mean_t), 0.0)
            loss[position] += 0.5 * float(np.mean((phi_s[fold_s == k] @ alpha) ** 2)) \
                - float(np.mean(phi_t[fold_t == k] @ alpha))
    return loss / folds


def _kliep_alpha(phi_t: np.ndarray, mean_s: np.ndarray, iterations: int = 300) -> np.ndarray:
    """Maximise mean log(φ_t α) subject to mean_sᵀα = 1, α ≥ 0 (projected gradient ascent, backtracking)."""

    def project(alpha: np.ndarray) -> np.ndarray:
        alpha = alpha + (1.0 - mean_s @ alpha) * mean_s / (mean_s @ mean_s)
        alpha = np.maximum(alpha, 0.0)
        return alpha / max(float(mean_s @ alpha), 1e-300)

    def objective(alpha: np.ndarray) -> float:
        return float(np.mean(np.log(np.maximum(phi_t @ alpha, 1e-300))))

    alpha = project(np.ones(len(mean_s)))
    value, step = objective(alpha), 1.0
    for _ in range(iterations):
        gradient = phi_t.T @ (1.0 / np.maximum(phi_t @ alpha, 1e-300)) / len(phi_t)
        direction = gradient / max(float(np.abs(gradient).max()), 1e-300) * alpha.max(initial=1.0)
        while step > 1e-10:
            trial = project(alpha + step * direction)
            trial_value = objective(trial)
            if trial_value > value:
                alpha, value, step = trial, trial_value, step * 1.5
                break
            step *= 0.5
        else:
            break
    return alpha
