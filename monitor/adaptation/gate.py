"""The gate: promote a challenger only when validated evidence says it beats doing nothing.

The current model (the champion, "no adaptation") is always the baseline. Every challenger and
the champion are scored on the same held-out rows under one validator, and a challenger passes
when its estimated accuracy gain over the champion exceeds z standard errors of the paired
per-row difference and ``MIN_GAIN`` (one point: a new model version is not worth a smaller
gain, and a gain that small is within the validators' bias). Of those that pass, the one with the highest estimate wins.

Regressors are judged the same way on the negated per-row loss (``regression_loss``: squared or
absolute error) instead of 0/1 correctness, so estimates are -MSE (or -MAE) and a gain is the
loss removed; the minimum gain is 1% of the champion's loss; the label-shift hypothesis (class
priors) does not apply to them, and the held-out split is not stratified.

Target labels and label-free evidence combine by one rule: **a few labels may only help, many
labels decide.** With n held-out target labels:

* n ≥ ``decisive_target_labels`` (200): the labels alone decide, by paired accuracy on them;
* otherwise the label-free validator below chooses, and the held-out labels are a paired check
  on every challenger it passes: one that the labels show to be significantly worse than the
  champion (one-sided exact McNemar test on the rows where the two disagree, p < ``VETO_ALPHA``;
  for a regressor a one-sided paired t-test on the per-row losses) is vetoed; one they do not is confirmed, with their gain and p recorded in its scores. With
  30 held-out labels two standard errors of a paired difference are 7-29 points, so the labels
  could not promote on their own what the label-free validator shows; they can catch a label-free
  choice that is clearly wrong (a map applied where the old concept still holds);
* where no label-free validator applies (see below), at least ``min_target_labels`` held-out
  labels decide alone, and so do they for challengers that assume labels (fine-tuning).

What is guaranteed: with target labels, nothing the labels show to be significantly worse is
promoted. What is not: without target labels, a label-free promotion rests on the shift
hypothesis the unlabelled target supports; if p(y|x) changed in a way that leaves the inputs
explained by that hypothesis (rows moved by a sensor change while the old labelling still holds
where they landed), a worse model can be promoted and only target labels can tell.

The label-free validator follows the shift hypothesis the evidence supports, not each adapter's
own assumption: an estimator that is right under a hypothesis is right for every model under it,
so all candidates are compared on one footing, and only the feature-map remedies are additionally
ruled out when the target lies within the source support. It asks which shift hypothesis the
unlabelled target supports, using a cross-fitted domain classifier between the source and the
target (on ``champion.embed(x)`` where the model has a representation, else on the raw features):

* in support - at most 10% of target rows look off the source support (called target with
  balanced probability > 0.95). Then feature maps are rejected (Occam: the target lies within
  the source domain; a map would move live rows off their labels), and
    - label shift, when re-weighting the source classes by q(y)/p(y) (q from calibrated EM on
      the champion's posteriors) makes the source indistinguishable from the target (AUC within
      max(4 null standard errors, 0.03) of 0.5, and at least 0.03 below the unweighted AUC):
      estimates are Σ_y q_y·acc_y on the held-out source rows, with a per-class (stratified) error;
    - covariate shift otherwise: importance-weighted validation (Sugiyama et al. 2007) with
      w = p_t/p_s and the Deep Embedded Validation control variate (You et al. 2019,
      η = -Cov(w·l, w)/Var(w)), provided the weights keep an effective sample share of 5%;
* off support - only a map can explain the target: the map hypothesis holds when the mapped
  target T_inv(target) is indistinguishable from the source (AUC ≤ 0.6), for the best of the
  candidates' maps and the current model's own input map. Then every model is scored at
  T_fwd(x_val) with the labels y_val, weighted by the remaining density ratio between the
  mapped target and the source (DEV again);
* otherwise no label-free hypothesis explains the target.

Estimates are reported only where their hypothesis is not in doubt. Support overlap is unclear (what
a change of p(y|x) inside the support looks like: subspace flip, swapped sensors) when, under covariate
shift, the domain classifier tells the target from the source (AUC more than max(4 null SEs, 0.03)
above 0.5) yet finds it within the source support with weights that keep more than
``UNCLEAR_ESS_SHARE`` (55%) of the sample; or when, under covariate or label shift, a classifier that
also sees feature products finds target rows off the source support (``overlap.products_check``).
Then estimates and intervals are None, ``estimate_status`` is "unknown", ``estimate_unknown`` says
why; the decision is unchanged (its gain is paired).

Nothing promoted without target labels means label-free evidence cannot decide (p(y|x) may have changed
where no label-free method can see it): ``needs_labels`` is set and the reason says labels are needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from monitor.adaptation import density, overlap
from monitor.adaptation.contract import AdaptationResult, Domain
from monitor.adaptation.model import AffineMap, Model, is_regressor, unwrap
from monitor.adaptation.paired import p_harm as _p_harm
from monitor.adaptation.paired import weighted_mean as _weighted_mean

#: Confidence above which the domain classifier's call that a target row is target means off support.
OFF_SUPPORT_CONFIDENCE = 0.95
#: The target lies within the source support when at most this share of its rows is off it.
OFF_SUPPORT_MAX = 0.10
#: A map explains the target when the mapped target and the source are told apart with at most this AUC.
MAP_AUC_MAX = 0.60
#: Class re-weighting explains the target when its AUC is within this many null SEs of 0.5 (cross-fitted
#: AUCs spread wider than the Mann-Whitney SE says) ...
LABEL_AUC_SES = 4.0
#: ... or within this much of 0.5, ...
LABEL_AUC_SLACK = 0.03
#: ... and at least this much below the unweighted AUC.
LABEL_AUC_DROP = 0.03
#: Importance weights with a smaller effective sample share are too uneven to validate with.
MIN_ESS_SHARE = 0.05
#: Under covariate shift, a target the domain classifier tells apart from the source while its weights keep more
#: than this effective sample share has an unclear support overlap: the estimates are reported as unknown.
UNCLEAR_ESS_SHARE = 0.55
#: Density-ratio cross-fitting folds.
FOLDS = 5
#: The smallest estimated accuracy gain a challenger is promoted for.
MIN_GAIN = 0.01
#: The gate's per-row measures: accuracy for classifiers, the negated loss for regressors.
LOSSES = ("squared_error", "absolute_error")
#: Held-out target labels veto a label-free choice when its harm is significant at this level (one-sided).
VETO_ALPHA = 0.05


@dataclass(frozen=True)
class GateSplit:
    """The rows the adapters see and the held-out rows only the gate sees."""

    source_train: Domain
    source_val: Domain
    target: Domain
    target_val: Domain


@dataclass
class Verdict:
    """The gate's judgement of one candidate."""

    name: str
    passed: bool
    scores: dict[str, float | str | None]
    reason: str
    rank: float = float("-inf")  # the estimate the winner is chosen by (kept when the reported one is unknown)


@dataclass
class GateDecision:
    """Which candidate to promote (None: keep the current model), every verdict, and why."""

    winner: int | None
    verdicts: list[Verdict]
    reason: str
    needs_labels: bool


@dataclass
class _Evidence:
    """The validator the gate settled on: rows to score models at, their labels and weights."""

    hypothesis: str
    validator: str
    summary: str
    rows: np.ndarray | None = None
    labels: np.ndarray | None = None
    weights: np.ndarray | None = None
    strata: np.ndarray | None = None
    checks: dict[str, float | str] = field(default_factory=dict)
    map_aucs: dict[int, float] = field(default_factory=dict)
    loss: str = "accuracy"
    unknown: str | None = None  # why estimated accuracies are reported as unknown (the decision still stands)

    @property
    def usable(self) -> bool:
        """Whether models can be scored under this evidence."""
        return self.rows is not None


def split_for_gate(source: Domain, target: Domain, validation_share: float, seed: int,
                   stratify: bool = True) -> GateSplit:
    """Hold out a share of the labelled source rows (per class, unless not ``stratify``: regression) and of the
    labelled target rows."""
    if not 0.0 < validation_share < 1.0:
        raise ValueError(f"validation_share must be between 0 and 1 (got {validation_share})")
    rng = np.random.default_rng(seed)
    source_held = _stratified_pick(source, validation_share, rng, stratify)
    target_held = _stratified_pick(target, validation_share, rng, stratify)
    source_kept = np.setdiff1d(np.arange(source.rows), source_held)
    masked = None if target.labelled is None else target.labelled.copy()
    if masked is not None:
        masked[target_held] = False
    return GateSplit(source.take(source_kept), source.take(source_held),
                     Domain(target.features, target.feature_names, target.labels, masked), target.take(target_held))


def judge(champion: Model, candidates: Sequence[tuple[str, AdaptationResult]], split: GateSplit, seed: int = 0,
          z: float = 2.0, min_target_labels: int = 30, decisive_target_labels: int = 200,
          regression_loss: str = "squared_error") -> GateDecision:
    """Judge each candidate against the champion; fill their ``passed``/``scores``/``reason``."""
    if regression_loss not in LOSSES:
        raise ValueError(f"regression_loss must be one of {', '.join(LOSSES)} (got {regression_loss!r})")
    loss = regression_loss if is_regressor(champion) else "accuracy"
    held = split.target_val.labelled_rows
    labels = _target_label_evidence(split.target_val) if held else None
    if labels is not None and held >= decisive_target_labels:
        evidence = labels
    else:
        evidence = _label_free_evidence(champion, candidates, split, seed)
        if not evidence.usable and labels is not None and held >= min_target_labels:
            evidence = labels
    for chosen in (evidence, labels):
        if chosen is not None:
            chosen.loss = loss
    corrects: dict[int, np.ndarray | None] = {}

    def champion_correct(chosen: _Evidence) -> np.ndarray | None:
        if id(chosen) not in corrects:
            corrects[id(chosen)] = _correct(champion, chosen) if chosen.usable else None
        return corrects[id(chosen)]

    verdicts = []
    for index, (name, result) in enumerate(candidates):
        own = labels if (result.assumption == "labels" and labels is not None and held >= min_target_labels) \
            else evidence
        verdict = _verdict(index, name, result, champion_correct(own), own, z, min_target_labels)
        if verdict.passed and own is not labels and labels is not None and result.model is not None:
            verdict = _label_check(verdict, result.model, champion_correct(labels), labels)
        verdicts.append(verdict)
    for (_, result), verdict in zip(candidates, verdicts):
        if result.assumption != "none":
            result.passed, result.scores, result.reason = verdict.passed, dict(verdict.scores), verdict.reason
    return _decide(verdicts, evidence, split)


def _label_check(verdict: Verdict, model: Model, champion_correct: np.ndarray | None,
                 labels: _Evidence) -> Verdict:
    """Held-out target labels as a paired check of a label-free pass: veto on significant harm, else confirm."""
    assert champion_correct is not None
    correct = _correct(model, labels)
    p_harm = _p_harm(correct, champion_correct, labels.loss)
    gain = float(np.mean(correct - champion_correct))
    scores = {**verdict.scores, "label_rows": float(len(correct)), "label_gain": gain, "label_p_harm": p_harm}
    check = f"{len(correct)} held-out target labels: gain {gain:+.3f}, one-sided p of harm {p_harm:.3f}"
    if p_harm < VETO_ALPHA:
        scores["label_check"] = "vetoed"
        return Verdict(verdict.name, False, scores, f"rejected: vetoed by {check} < {VETO_ALPHA} (the label-free "
                                                    f"estimate was {float(verdict.scores['gain']):+.3f})",  # type: ignore[arg-type]
                       verdict.rank)
    scores["label_check"] = "confirmed"
    return Verdict(verdict.name, True, scores, f"{verdict.reason}; not contradicted by {check}", verdict.rank)


def _stratified_pick(domain: Domain, share: float, rng: np.random.Generator, stratify: bool = True) -> np.ndarray:
    """Indices of about ``share`` of the labelled rows, drawn class by class (or all at once)."""
    if domain.labels is None or domain.labelled is None:
        return np.zeros(0, dtype=int)
    labelled = np.flatnonzero(domain.labelled)
    if not stratify:
        return np.sort(rng.permutation(labelled)[: int(round(share * len(labelled)))])
    picked = []
    for value in np.unique(domain.labels[labelled]):
        rows = rng.permutation(labelled[domain.labels[labelled] == value])
        picked.append(rows[: int(round(share * len(rows)))])
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=int)


def _target_label_evidence(target_val: Domain) -> _Evidence:
    """Held-out target labels: every row counts once."""
    held = target_val.with_labels()
    return _Evidence("target_labels", "target_labels", f"judged on {held.rows} held-out target labels",
                     held.features, held.labels, np.ones(held.rows), checks={"target_labels": float(held.rows)})


def _label_free_evidence(champion: Model, candidates: Sequence[tuple[str, AdaptationResult]], split: GateSplit,
                         seed: int) -> _Evidence:
    """The validator the unlabelled target supports (see the module docstring)."""
    val = split.source_val.with_labels()
    if val.rows < 2 or split.target.rows < 2:
        return _Evidence("none", "none", f"too few rows to validate on ({val.rows} held-out labelled source rows, "
                                         f"{split.target.rows} target rows)")
    source_rows = np.vstack([val.features, split.source_train.features])
    space = _Space(champion, source_rows)
    raw = density.classifier_fit(space.source, space.of(split.target.features), folds=FOLDS, seed=seed)
    off_share = raw.off_support_share(OFF_SUPPORT_CONFIDENCE)
    checks: dict[str, float | str] = {"domain_auc": raw.auc, "off_support_share": off_share}
    maps = _maps(champion, candidates)
    map_aucs = {key: density.domain_auc(space.source, space.of(to_source(split.target.features)),
                                        folds=FOLDS, seed=seed)
                for key, (_, to_source) in maps.items()}
    if off_share <= OFF_SUPPORT_MAX:
        evidence = _in_support_evidence(champion, split, val, space, raw, seed, checks)
    else:
        evidence = _map_evidence(maps, split, val, space, map_aucs, seed, checks)
    evidence.map_aucs = map_aucs
    return evidence


class _Space:
    """Where density ratios are computed: the champion's embedding when it has one, else raw features."""

    def __init__(self, champion: Model, source_rows: np.ndarray) -> None:
        self.champion = champion
        embedded = champion.embed(source_rows)
        self.embedded = embedded is not None
        self.source = source_rows if embedded is None else embedded

    def of(self, rows: np.ndarray) -> np.ndarray:
        """The rows in the space."""
        embedded = self.champion.embed(rows) if self.embedded else None
        return rows if embedded is None else embedded


def _in_support_evidence(champion: Model, split: GateSplit, val: Domain, space: _Space, raw: density.DomainFit,
                         seed: int, checks: dict[str, float | str]) -> _Evidence:
    """Label shift when class re-weighting explains the target, else covariate shift."""
    evidence = (_label_shift_evidence(champion, split, val, space, raw, seed, checks)
                or _covariate_evidence(split, val, space, raw, checks))
    if evidence.usable and evidence.unknown is None:  # a swap of sensors: rows off support only products see
        evidence.unknown = overlap.products_check(space.source, space.of(split.target.features), FOLDS, seed, checks)
    return evidence


def _covariate_evidence(split: GateSplit, val: Domain, space: _Space, raw: density.DomainFit,
                        checks: dict[str, float | str]) -> _Evidence:
    """Importance-weighted validation (DEV) when the weights keep enough of the sample."""
    weights = raw.source_ratio[: val.rows]
    checks["ess_share"] = density.ess_share(weights)
    where = f"the target lies within the source support ({checks['off_support_share']:.0%} of its rows off it)"
    if checks["ess_share"] < MIN_ESS_SHARE:
        return _Evidence("none", "none", f"{where}, but the importance weights are too uneven to validate with "
                                         f"(effective sample share {checks['ess_share']:.1%})", checks=checks)
    evidence = _Evidence("covariate", "dev", f"under covariate shift ({where}; importance-weighted validation with "
                                            f"the DEV control variate)", val.features, val.labels, weights,
                         checks=checks)
    null_se = density.auc_null_se(len(space.source), split.target.rows)
    if raw.auc > 0.5 + max(LABEL_AUC_SES * null_se, LABEL_AUC_SLACK) and float(checks["ess_share"]) > UNCLEAR_ESS_SHARE:
        evidence.unknown = (f"support overlap unclear: the domain classifier tells the target from the source "
                            f"(AUC {raw.auc:.2f}) yet finds it within the source support, with weights that keep "
                            f"{float(checks['ess_share']):.0%} of the sample; p(y|x) may have changed where no "
                            f"label-free method can see")
    return evidence


def _label_shift_evidence(champion: Model, split: GateSplit, val: Domain, space: _Space, raw: density.DomainFit,
                          seed: int, checks: dict[str, float | str]) -> _Evidence | None:
    """The label-shift validator when re-weighting the source classes explains the target, else None."""
    if is_regressor(champion):
        return None
    train = split.source_train.with_labels()
    features = np.vstack([val.features, train.features])
    index = _class_index(champion.classes, np.concatenate([val.labels, train.labels]))
    if index is None or len(np.unique(index[: val.rows])) < len(champion.classes):
        return None
    # the champion learnt from the whole source, so all labelled source rows calibrate it equally well
    source_priors, target_priors = density.estimate_target_priors(
        champion.predict_proba(features), index, champion.predict_proba(split.target.features))
    ratios = target_priors / np.clip(source_priors, 1e-12, None)
    label_auc = density.domain_auc(space.of(features), space.of(split.target.features),
                                   source_weight=ratios[index], folds=FOLDS, seed=seed)
    checks["label_auc"] = label_auc
    null_se = density.auc_null_se(density.effective_sample_size(ratios[index]), split.target.rows)
    if label_auc > 0.5 + max(LABEL_AUC_SES * null_se, LABEL_AUC_SLACK) or raw.auc - label_auc < LABEL_AUC_DROP:
        return None
    val_index = index[: val.rows]
    weights = (target_priors / np.clip(density.class_priors(val_index, len(source_priors)), 1e-12, None))[val_index]
    return _Evidence("label", "iwv", f"under label shift (re-weighting the source classes explains the target: "
                                     f"domain AUC {label_auc:.2f} against {raw.auc:.2f} unweighted)",
                     val.features, val.labels, weights, strata=val_index, checks=checks)


def _maps(champion: Model, candidates: Sequence[tuple[str, AdaptationResult]]) -> dict[int, tuple[str, AffineMap]]:
    """The target-to-source maps on offer, by candidate index: the candidates' and the current model's (-1)."""
    maps = {index: (name, result.feature_map) for index, (name, result) in enumerate(candidates)
            if result.assumption == "map" and result.feature_map is not None}
    _, current, _ = unwrap(champion)
    if current is not None:
        maps[-1] = ("the current model", current)
    return maps


def _map_evidence(maps: dict[int, tuple[str, AffineMap]], split: GateSplit, val: Domain, space: _Space,
                  map_aucs: dict[int, float], seed: int, checks: dict[str, float | str]) -> _Evidence:
    """The map validator of the map that best explains an off-support target, if one does."""
    off = f"the target is {checks['off_support_share']:.0%} off the source support"
    if not map_aucs or min(map_aucs.values()) > MAP_AUC_MAX:
        best = f" (best AUC after mapping {min(map_aucs.values()):.2f})" if map_aucs else ""
        return _Evidence("none", "none", f"{off} and no feature map makes it indistinguishable from the source{best}",
                         checks=checks)
    chosen = min(map_aucs, key=map_aucs.__getitem__)
    name, to_source = maps[chosen]
    mapped = space.of(to_source(split.target.features))
    source_rows = np.vstack([space.of(val.features), space.of(split.source_train.features)])
    weights = density.classifier_fit(source_rows, mapped, folds=FOLDS, seed=seed).source_ratio[: val.rows]
    checks["map_auc"] = map_aucs[chosen]
    return _Evidence("map", "dev", f"under the feature map of {name} ({off}; mapped back it is indistinguishable "
                                   f"from the source, AUC {map_aucs[chosen]:.2f})",
                     to_source.inverse()(val.features), val.labels, weights, checks=checks)


def _class_index(classes: np.ndarray, labels: np.ndarray) -> np.ndarray | None:
    """Each label's position in ``classes``, or None when a label is not among them."""
    lookup = {value: index for index, value in enumerate(classes.tolist())}
    try:
        return np.array([lookup[label] for label in labels.tolist()], dtype=int)
    except KeyError:
        return None


def _correct(model: Model, evidence: _Evidence) -> np.ndarray:
    """Each evidence row's utility (higher is better): 1 where a classifier is right, else 0; a regressor's
    negated squared or absolute error."""
    assert evidence.rows is not None and evidence.labels is not None
    predicted = model.predict(evidence.rows)
    if evidence.loss == "accuracy":
        return (predicted == evidence.labels).astype(float)
    error = np.asarray(predicted, dtype=float) - np.asarray(evidence.labels, dtype=float)
    return -(error**2) if evidence.loss == "squared_error" else -np.abs(error)


def _verdict(index: int, name: str, result: AdaptationResult, champion_correct: np.ndarray | None,
             evidence: _Evidence, z: float, min_target_labels: int) -> Verdict:
    """Score one candidate under the evidence and say whether it passes."""
    if result.assumption == "none":
        return Verdict(name, False, {}, f"not validated: a {result.remedy} remedy assumes nothing the gate can check")
    if result.model is None:
        return Verdict(name, False, {}, "rejected: the adapter produced no model to validate")
    if result.assumption == "labels" and evidence.hypothesis != "target_labels":
        return Verdict(name, False, {}, f"rejected: a {result.remedy} remedy is judged on held-out target labels "
                                        f"only, and fewer than {min_target_labels} are held out")
    if champion_correct is None:
        return Verdict(name, False, dict(evidence.checks),
                       f"not validated: {evidence.summary}; target labels are needed")
    scores, rank = _scores(result.model, champion_correct, evidence, z)
    if index in evidence.map_aucs:
        scores["map_auc"] = evidence.map_aucs[index]
    gain, noise = float(scores["gain"]), float(scores["noise"])
    if result.assumption == "map" and evidence.hypothesis in ("covariate", "label"):
        return Verdict(name, False, scores, "rejected: the target lies within the source domain; "
                                            "a map would move live rows off their labels", rank)
    # a classifier must gain a point of accuracy; a regressor 1% of its loss
    least = MIN_GAIN if evidence.loss == "accuracy" else MIN_GAIN * abs(rank - gain)
    scores["loss"] = evidence.loss
    unknown = "" if evidence.unknown is None else f"; estimated target {_measure(evidence.loss)} unknown"
    if gain > max(noise, least):
        return Verdict(name, True, scores, f"passed: gain {gain:+.3f} exceeds the noise {noise:.3f} "
                                           f"{evidence.summary}{unknown}", rank)
    return Verdict(name, False, scores, f"rejected: gain {gain:+.3f} does not exceed the noise {noise:.3f} "
                                        f"(or {least:.3g}) {evidence.summary}{unknown}", rank)


def _measure(loss: str) -> str:
    """What an estimate measures, in words: accuracy, or the negated loss."""
    return "accuracy" if loss == "accuracy" else f"-{loss}"


def _scores(model: Model, champion_correct: np.ndarray, evidence: _Evidence,
            z: float) -> tuple[dict[str, float | str | None], float]:
    """Estimated accuracies, the paired gain and its noise (z × standard error), and the checks; and the estimate.

    Where the evidence says support overlap is unclear the estimates and their intervals are None, with
    ``estimate_status`` "unknown" and the reason in ``estimate_unknown``: never a confident number.
    """
    assert evidence.weights is not None
    control = evidence.validator == "dev"
    champion_estimate, champion_error = _weighted_mean(champion_correct, evidence.weights, control, evidence.strata)
    correct = _correct(model, evidence)
    _, own_error = _weighted_mean(correct, evidence.weights, control, evidence.strata)
    gain, error = _weighted_mean(correct - champion_correct, evidence.weights, control, evidence.strata)
    estimate = champion_estimate + gain
    # ± z standard errors, valid under the hypothesis the estimates rest on (label-free: not a guarantee)
    scores: dict[str, float | str | None] = {
        "estimate": estimate, "estimate_low": estimate - z * own_error, "estimate_high": estimate + z * own_error,
        "champion_estimate": champion_estimate, "champion_estimate_low": champion_estimate - z * champion_error,
        "champion_estimate_high": champion_estimate + z * champion_error, "estimate_status": "estimated",
        "gain": gain, "noise": z * error, "validator": evidence.validator, "hypothesis": evidence.hypothesis,
        **evidence.checks}
    if evidence.unknown is not None:
        scores.update(dict.fromkeys(_ESTIMATES), estimate_status="unknown", estimate_unknown=evidence.unknown)
    return scores, estimate


#: The scores reported as None when an estimate is unknown.
_ESTIMATES = ("estimate", "estimate_low", "estimate_high", "champion_estimate", "champion_estimate_low",
              "champion_estimate_high")


def _decide(verdicts: list[Verdict], evidence: _Evidence, split: GateSplit) -> GateDecision:
    """The passed candidate with the highest estimate, or none and why."""
    passed = [index for index, verdict in enumerate(verdicts) if verdict.passed]
    if passed:
        winner = max(passed, key=lambda index: verdicts[index].rank)
        scores = verdicts[winner].scores
        summary = f"judged on {int(float(scores['target_labels']))} held-out target labels" \
            if scores.get("validator") == "target_labels" else evidence.summary
        checked = "" if "label_check" not in scores else (
            f"; not contradicted by {int(float(scores['label_rows']))} held-out target labels (gain "
            f"{float(scores['label_gain']):+.3f}, one-sided p of harm {float(scores['label_p_harm']):.3f})")
        measure = _measure(str(scores.get("loss", "accuracy")))
        estimated = (f"estimated target {measure} unknown ({scores['estimate_unknown']})"
                     if scores.get("estimate") is None else
                     f"estimated target {measure} {float(scores['estimate']):.3f} against "  # type: ignore[arg-type]
                     f"{float(scores['champion_estimate']):.3f} without adaptation")  # type: ignore[arg-type]
        return GateDecision(winner, verdicts, f"{verdicts[winner].name} promoted: {estimated} (gain "
                            f"{float(scores['gain']):+.3f}, noise {float(scores['noise']):.3f}) "  # type: ignore[arg-type]
                            f"{summary}{checked}.", False)
    if evidence.hypothesis == "target_labels":
        return GateDecision(None, verdicts, f"no adaptation promoted: {evidence.summary}, no challenger beat the "
                                            f"current model by more than the noise.", False)
    if not evidence.usable:
        return GateDecision(None, verdicts, f"no adaptation promoted: {evidence.summary}; target labels are needed "
                                            f"(have {split.target_val.labelled_rows} held out).", True)
    return GateDecision(None, verdicts, f"no adaptation promoted: no challenger beat the current model by more "
                                        f"than the validator's noise {evidence.summary}; label-free evidence cannot "
                                        f"rule out a change of p(y|x), so target labels are needed.", True)
