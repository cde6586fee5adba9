"""The ``finetune`` adapter: fine-tunes a torch model on the target labels that have arrived.

A copy of the source network is put behind a learnable per-feature **attention gate**
``g = sigmoid(a)`` (starting near 1) that multiplies the inputs, and trained on the target labels
with the loss

    cross-entropy(target labels) + λ · ‖θ − θ_source‖²

(a regressor, ``TorchModel`` with ``task: regression``: the mean squared error on the target values
instead of the cross-entropy; early stopping on the validation MSE).

The L2-to-source term (λ: ``l2_to_source``) makes moving the network's weights costly while the
gate moves freely, so transfer is selective: a feature whose source relation still holds keeps
its weight, one whose relation broke or flipped is damped by its gate rather than by rewriting
the network. Training stops early on a validation split of the target labels; the weights of the
best validation epoch are kept.

A model that is not a torch module (an sklearn classifier or regressor) is refused with the
reason: driftd cannot fine-tune what it cannot take gradients of.

The challenger is a ``TorchModel`` over a ``GatedModule`` built by ``build_gated``, so
``monitor.adaptation.model.load_torch`` rebuilds it from its manifest (state dict, weights only).
torch is imported only when the adapter runs: the plugin loads without it.
"""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from monitor.adaptation.model import call_factory, is_regressor
from monitor.plugin import (
    AdaptationContext,
    AdaptationResult,
    AdaptedModel,
    Adapter,
    AdapterError,
    AffineMap,
    Domain,
    Model,
    TorchModel,
    hookimpl,
    parse_adapter_options,
    unwrap,
)

#: The factory that rebuilds a fine-tuned model (a gate in front of the original module).
GATED_FACTORY = "plugins.adapters.finetune:build_gated"


class FinetuneOptions(BaseModel):
    """Options of the ``finetune`` adapter."""

    model_config = ConfigDict(extra="forbid", strict=False)

    min_labels: int = Field(default=20, ge=2, description="fewest target labels to fine-tune on")
    l2_to_source: float = Field(default=0.1, ge=0, description="λ of the L2 pull towards the source weights")
    lr: float = Field(default=3e-3, gt=0, description="Adam learning rate of the network")
    gate_lr: float = Field(default=0.05, ge=0, description="Adam learning rate of the gate (0 freezes it)")
    gate_init: float = Field(default=0.99, gt=0, lt=1, description="initial gate weight of every feature")
    batch_size: int = Field(default=32, ge=1)
    max_epochs: int = Field(default=200, ge=1)
    patience: int = Field(default=15, ge=1, description="epochs without a better validation loss before stopping")
    validation_fraction: float = Field(default=0.25, gt=0, lt=1, description="share of target labels held out")
    source_mix: float = Field(default=0.0, ge=0, description="labelled source rows mixed in per target training row")
    seed: int | None = Field(default=None, description="default: the run's seed")


@functools.cache
def gated_module_class() -> type:
    """The GatedModule class (defined on first use, so importing this plugin needs no torch)."""
    import torch
    from torch import nn

    class GatedModule(nn.Module):
        """A learnable per-feature gate ``sigmoid(gate_logits)`` multiplying the inputs of ``inner``."""

        def __init__(self, inner: nn.Module, features: int, gate_init: float = 0.99) -> None:
            super().__init__()
            self.gate_logits = nn.Parameter(torch.full((features,), math.log(gate_init / (1 - gate_init))))
            self.inner = inner

        def gate(self) -> torch.Tensor:
            """The per-feature weights in (0, 1)."""
            return torch.sigmoid(self.gate_logits)

        def forward(self, features: torch.Tensor) -> torch.Tensor:
            """The inner module's logits on gated inputs."""
            return self.inner(features * self.gate())

        @property
        def embed(self) -> Any:
            """The inner module's ``embed`` on gated inputs, or None when it has none."""
            inner_embed = getattr(self.inner, "embed", None)
            if not callable(inner_embed):
                return None
            return lambda features: inner_embed(features * self.gate())

    return GatedModule


def __getattr__(name: str) -> Any:
    """``GatedModule`` on demand (PEP 562), so the plugin imports without torch."""
    if name == "GatedModule":
        return gated_module_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_gated(factory: str, factory_options: Mapping[str, Any] | None, features: int) -> Any:
    """A GatedModule around a fresh module from ``factory`` (what ``load_torch`` calls)."""
    return gated_module_class()(call_factory(factory, factory_options or {}), int(features))


@dataclass
class TrainingData:
    """Float tensors of the training and validation rows, class indices (a regressor: float values) as labels."""

    train_x: Any
    train_y: Any
    val_x: Any
    val_y: Any
    mixed_source_rows: int


@dataclass
class TrainingLog:
    """How training went: epochs run and the validation scores before and at the best epoch."""

    epochs: int
    best_epoch: int
    start_loss: float
    start_accuracy: float | None
    best_loss: float
    best_accuracy: float | None


class Finetune(Adapter):
    """Fine-tunes a torch model behind a per-feature gate, pulled towards the source weights."""

    type_name = "finetune"

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.config: FinetuneOptions = parse_adapter_options(FinetuneOptions, self.options, self.type_name)

    def adapt(self, ctx: AdaptationContext) -> AdaptationResult:
        """Fine-tune the model on the labelled target rows; the challenger keeps map and priors."""
        import torch

        base, input_map, prior_ratios = _torch_parts(ctx.require_model())
        labelled = _finite_labelled(ctx, base)
        if labelled.rows < self.config.min_labels:
            raise AdapterError(f"finetune: {labelled.rows} labelled target rows have arrived, "
                               f"{self.config.min_labels} are needed (option 'min_labels')")
        seed = ctx.seed if self.config.seed is None else self.config.seed
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            gated, factory, factory_options = _gated_copy(base, labelled.features.shape[1], self.config.gate_init)
            data = self._training_data(ctx, labelled, base, input_map, np.random.default_rng(seed))
            objective = _Objective(base, _log_prior(prior_ratios, len(base.classes)))
            training = _train(gated, data, objective, self.config, ctx, torch.Generator().manual_seed(seed))
        gated.eval()
        challenger: Model = TorchModel(gated, base.classes, factory, factory_options, base.refit_options, base.task)
        if input_map is not None or prior_ratios is not None:
            challenger = AdaptedModel(challenger, input_map, prior_ratios)
        ctx.log.info("finetune: %d epochs, best validation loss %.4f (was %.4f)",
                     training.epochs, training.best_loss, training.start_loss)
        return AdaptationResult(remedy="model", assumption="labels", model=challenger,
                                details=self._details(gated, base, labelled.feature_names, data, training))

    def _training_data(self, ctx: AdaptationContext, labelled: Domain, base: TorchModel,
                       input_map: AffineMap | None, rng: np.random.Generator) -> TrainingData:
        """Target labels split into training and validation rows, plus any mixed-in source rows."""
        import torch

        features = labelled.features if input_map is None else input_map(labelled.features)
        labels = _training_labels(labelled.labels, base, "target")
        train, val = _split(labelled.rows, self.config.validation_fraction, rng)
        train_x, train_y = features[train], labels[train]
        mixed = 0
        if self.config.source_mix > 0:
            # source rows already lie where the base model was trained: they skip the input map
            source = ctx.require_source_labels()
            source = source.take(_trainable(source, base, "source"))
            mixed = min(source.rows, int(round(self.config.source_mix * len(train))))
            pick = rng.choice(source.rows, size=mixed, replace=False)
            train_x = np.concatenate([train_x, source.features[pick]])
            train_y = np.concatenate([train_y, _training_labels(source.labels[pick], base, "source")])

        def tensor(array: np.ndarray) -> Any:
            return torch.as_tensor(np.asarray(array, dtype=np.float32))

        return TrainingData(tensor(train_x), torch.as_tensor(train_y), tensor(features[val]),
                            torch.as_tensor(labels[val]), mixed)

    def _details(self, gated: Any, base: TorchModel, names: tuple[str, ...], data: TrainingData,
                 training: TrainingLog) -> dict[str, Any]:
        """What the run learnt, for the result record."""
        gate = gated.gate().detach().double().numpy()
        scores = {"validation_accuracy_before": training.start_accuracy,
                  "best_validation_accuracy": training.best_accuracy} if base.task != "regression" else {}
        return {
            "epochs": training.epochs, "best_epoch": training.best_epoch,
            "loss": "squared_error" if base.task == "regression" else "cross_entropy",
            "validation_loss_before": round(training.start_loss, 6),
            "best_validation_loss": round(training.best_loss, 6),
            **{key: round(float(value), 6) for key, value in scores.items()},
            "gate_weights": {name: round(float(weight), 4) for name, weight in zip(names, gate)},
            "l2_to_source": self.config.l2_to_source,
            "weight_shift": round(_weight_shift(gated.inner, _network(base.module)), 6),
            "train_rows": int(len(data.train_y)), "validation_rows": int(len(data.val_y)),
            "mixed_source_rows": data.mixed_source_rows,
        }


def _torch_parts(model: Model) -> tuple[TorchModel, AffineMap | None, np.ndarray | None]:
    """The torch model inside ``model`` with its input map and prior ratios."""
    base, input_map, prior_ratios = unwrap(model)
    if not isinstance(base, TorchModel):
        kind = "regressor" if is_regressor(base) else "classifier"
        raise AdapterError(f"finetune needs a torch model (loader: torch), the monitor's model is a "
                           f"{type(base).__name__} ({kind}): driftd cannot fine-tune a model it cannot take "
                           f"gradients of; retrain it on the target labels outside driftd, or use "
                           f"importance_weighting / feature_alignment, which retrain or wrap any model")
    return base, input_map, prior_ratios


def _finite_labelled(ctx: AdaptationContext, base: TorchModel) -> Domain:
    """The labelled target rows whose features (a regressor's: and values) are all finite (a missing value cannot
    be trained on)."""
    labelled = ctx.target.with_labels()
    return labelled.take(_trainable(labelled, base))


def _trainable(domain: Domain, base: TorchModel, name: str = "target") -> np.ndarray:
    """Which rows can be trained on: finite features, and a regressor's finite numeric value."""
    keep = np.isfinite(domain.features).all(axis=1)
    if base.task == "regression" and domain.labels is not None:
        keep &= np.isfinite(_numbers(domain.labels, name))
    return keep


def _numbers(labels: np.ndarray, domain: str) -> np.ndarray:
    """A regressor's labels as floats; AdapterError when they are not numbers."""
    try:
        return np.asarray(labels, dtype=np.float64)
    except (TypeError, ValueError):
        raise AdapterError(f"finetune: the {domain} labels of a regression model must be numbers") from None


def _training_labels(labels: np.ndarray | None, base: TorchModel, domain: str) -> np.ndarray:
    """Class indices, or a regressor's values as float32."""
    if base.task == "regression":
        return _numbers(np.asarray(labels if labels is not None else []), domain).astype(np.float32)
    return _class_indices(labels, base.classes, domain)


def _class_indices(labels: np.ndarray | None, classes: np.ndarray, domain: str) -> np.ndarray:
    """Labels as indices into ``classes``; AdapterError names labels the model does not know."""
    index = {label: position for position, label in enumerate(np.asarray(classes).tolist())}
    values = np.asarray(labels).tolist() if labels is not None else []
    unknown = sorted({repr(value) for value in values if value not in index})
    if unknown:
        raise AdapterError(f"finetune: the {domain} labels hold {', '.join(unknown[:5])}, "
                           f"which are not classes of the model ({', '.join(map(repr, index))})")
    return np.asarray([index[value] for value in values], dtype=np.int64)


def _split(rows: int, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A seeded split of ``rows`` into training and validation indices (both non-empty)."""
    order = rng.permutation(rows)
    held_out = min(rows - 1, max(1, int(round(fraction * rows))))
    return order[held_out:], order[:held_out]


def _gated_copy(base: TorchModel, features: int, gate_init: float) -> tuple[Any, str, dict[str, Any]]:
    """A GatedModule over a copy of the source module, and the factory that rebuilds it.

    A model fine-tuned before already has a gate: it is copied and trained further.
    """
    gated_class = gated_module_class()
    if isinstance(base.module, gated_class):
        return copy.deepcopy(base.module), base.factory, dict(base.factory_options)
    gated = gated_class(copy.deepcopy(base.module), features, gate_init)
    options = {"factory": base.factory, "factory_options": dict(base.factory_options), "features": features}
    return gated, GATED_FACTORY, options


def _network(module: Any) -> Any:
    """The network behind a module's gate (the module itself when it has none)."""
    return module.inner if isinstance(module, gated_module_class()) else module


def _log_prior(prior_ratios: np.ndarray | None, classes: int) -> Any:
    """Log prior ratios added to the logits, so training sees what the wrapped model predicts."""
    import torch

    if prior_ratios is None:
        return torch.zeros(classes)
    return torch.log(torch.as_tensor(np.clip(prior_ratios, 1e-12, None), dtype=torch.float32))


class _Objective:
    """The training loss and the validation scores: cross-entropy (with the prior correction) and accuracy, or a
    regressor's squared error."""

    def __init__(self, base: TorchModel, log_prior: Any) -> None:
        self.base = base
        self.log_prior = log_prior

    def loss(self, outputs: Any, labels: Any) -> Any:
        """The mean training loss of a batch."""
        if self.base.task == "regression":
            return self.base.row_losses(outputs, labels).mean()
        import torch.nn.functional as F

        return F.cross_entropy(outputs + self.log_prior, labels)

    def evaluate(self, outputs: Any, labels: Any) -> tuple[float, float | None]:
        """The loss and the accuracy (None for a regressor) on validation rows."""
        loss = float(self.loss(outputs, labels))
        if self.base.task == "regression":
            return loss, None
        return loss, float(((outputs + self.log_prior).argmax(dim=1) == labels).double().mean())


def _train(gated: Any, data: TrainingData, objective: _Objective, config: FinetuneOptions, ctx: AdaptationContext,
           generator: Any) -> TrainingLog:
    """Adam on the gated network with early stopping; leaves the best validation epoch's weights."""
    import torch

    network = [parameter for parameter in gated.inner.parameters() if parameter.requires_grad]
    anchors = [parameter.detach().clone() for parameter in network]
    optimizer = torch.optim.Adam([{"params": network, "lr": config.lr},
                                  {"params": [gated.gate_logits], "lr": config.gate_lr}])
    start_loss, start_accuracy = _evaluate(gated, data.val_x, data.val_y, objective)
    best = (start_loss, start_accuracy, 0, copy.deepcopy(gated.state_dict()))
    epoch = stale = 0
    while epoch < config.max_epochs and stale < config.patience:
        epoch += 1
        gated.train()
        for batch in torch.randperm(len(data.train_y), generator=generator).split(config.batch_size):
            ctx.check_cancelled()
            loss = objective.loss(gated(data.train_x[batch]), data.train_y[batch])
            if config.l2_to_source > 0:
                loss = loss + config.l2_to_source * sum(((p - a) ** 2).sum() for p, a in zip(network, anchors))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        val_loss, val_accuracy = _evaluate(gated, data.val_x, data.val_y, objective)
        if val_loss < best[0] - 1e-6:
            best, stale = (val_loss, val_accuracy, epoch, copy.deepcopy(gated.state_dict())), 0
        else:
            stale += 1
    gated.load_state_dict(best[3])
    return TrainingLog(epoch, best[2], start_loss, start_accuracy, best[0], best[1])


def _evaluate(gated: Any, features: Any, labels: Any, objective: _Objective) -> tuple[float, float | None]:
    """The loss and accuracy (a regressor: None) on the given rows."""
    import torch

    gated.eval()
    with torch.no_grad():
        return objective.evaluate(gated(features), labels)


def _weight_shift(network: Any, source: Any) -> float:
    """‖θ − θ_source‖ / ‖θ_source‖ over the network's parameters."""
    import torch

    with torch.no_grad():
        pairs = list(zip(network.parameters(), source.parameters()))
        moved = sum(float(((p - q) ** 2).sum()) for p, q in pairs)
        size = sum(float((q ** 2).sum()) for _, q in pairs)
    return math.sqrt(moved / size) if size > 0 else math.sqrt(moved)


@hookimpl
def driftd_adapters() -> Mapping[str, type[Adapter]]:
    """Register the ``finetune`` adapter."""
    return {"finetune": Finetune}
