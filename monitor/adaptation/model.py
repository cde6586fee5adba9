"""Models the adapters work on: a small common face over scikit-learn estimators and torch modules.

A classifier answers ``predict_proba(X)`` over its ``classes``; a regressor (``task ==
"regression"``, no classes) answers ``predict(X)`` with numbers. Adapters wrap the current model with a
feature map or a prior correction (``AdaptedModel``), or retrain it (``refit``). ``save`` writes a
model version as a folder with a ``manifest.json``; ``monitor.daemon.model_versions`` reads it back.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import pickle  # noqa: S403 - only from trusted places, see load_pickle
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np


class ModelLoadError(Exception):
    """A model could not be loaded or saved; the message names the path and the cause."""


@dataclass(frozen=True)
class AffineMap:
    """x ↦ A x + b on feature rows."""

    matrix: np.ndarray
    offset: np.ndarray

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """Map the rows of ``features``."""
        return features @ self.matrix.T + self.offset

    def inverse(self) -> AffineMap:
        """The map back (A⁻¹ (x - b))."""
        inverse = np.linalg.inv(self.matrix)
        return AffineMap(inverse, -inverse @ self.offset)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {"matrix": self.matrix.tolist(), "offset": self.offset.tolist()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AffineMap:
        """Read back ``to_json``."""
        return cls(np.asarray(data["matrix"], dtype=float), np.asarray(data["offset"], dtype=float))


class Model:
    """A classifier over ``classes`` (or a regressor); subclasses wrap a concrete library."""

    #: The loader that reads this model's files back (``driftd_model_loaders`` name).
    loader: str = ""
    classes: np.ndarray
    #: "classification" or "regression" (``predict`` returns numbers and there are no classes).
    task: str = "classification"

    @property
    def is_regressor(self) -> bool:
        """Whether the model predicts numbers rather than classes."""
        return is_regressor(self)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities, one row per input row, columns in ``classes`` order."""
        raise NotImplementedError

    def predict(self, features: np.ndarray) -> np.ndarray:
        """The most probable class of each row."""
        return self.classes[np.argmax(self.predict_proba(features), axis=1)]

    def refit(self, features: np.ndarray, labels: np.ndarray, sample_weight: np.ndarray | None = None) -> Model:
        """A new model of the same kind trained on these rows (the current one is left as it is)."""
        raise ModelLoadError(f"a {type(self).__name__} cannot be retrained")

    def embed(self, features: np.ndarray) -> np.ndarray | None:
        """The model's learnt representation of the rows, where it has a feature extractor."""
        return None

    def save(self, directory: Path) -> dict[str, Any]:
        """Write the model's files into ``directory``; return the manifest entries that find them."""
        raise NotImplementedError


class SklearnModel(Model):
    """A fitted scikit-learn classifier (anything with ``predict_proba`` and ``classes_``)."""

    loader = "sklearn"

    def __init__(self, estimator: Any) -> None:
        if not callable(getattr(estimator, "predict_proba", None)) or not hasattr(estimator, "classes_"):
            raise ModelLoadError(f"{type(estimator).__name__} is not a fitted classifier with predict_proba")
        self.estimator = estimator
        self.classes = np.asarray(estimator.classes_)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities from the estimator."""
        return np.asarray(self.estimator.predict_proba(features), dtype=float)

    def refit(self, features: np.ndarray, labels: np.ndarray, sample_weight: np.ndarray | None = None) -> Model:
        """Clone the estimator's settings and fit it on these rows with these weights."""
        try:
            from sklearn.base import clone
            fresh = clone(self.estimator)
        except ImportError:  # pragma: no cover - sklearn estimators come with sklearn
            fresh = copy.deepcopy(self.estimator)
        fresh.fit(features, labels, sample_weight=sample_weight)
        return SklearnModel(fresh)

    def save(self, directory: Path) -> dict[str, Any]:
        """Pickle the estimator into ``model.pkl`` (readable by this user only)."""
        path = directory / "model.pkl"
        with open(path, "wb", opener=_private_opener) as handle:
            pickle.dump(self.estimator, handle, protocol=pickle.HIGHEST_PROTOCOL)
        return {"loader": self.loader, "file": path.name, "options": {}}


class SklearnRegressor(Model):
    """A fitted scikit-learn regressor (anything with ``predict`` and no ``predict_proba``)."""

    loader = "sklearn"
    task = "regression"

    def __init__(self, estimator: Any) -> None:
        if not callable(getattr(estimator, "predict", None)):
            raise ModelLoadError(f"{type(estimator).__name__} is not a fitted estimator with predict")
        self.estimator = estimator
        self.classes = np.empty(0)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """A regressor has no class probabilities."""
        raise ModelLoadError(f"{type(self.estimator).__name__} is a regressor: it has no class probabilities")

    def predict(self, features: np.ndarray) -> np.ndarray:
        """The estimator's predictions, as floats."""
        return np.asarray(self.estimator.predict(features), dtype=float).reshape(len(features))

    def refit(self, features: np.ndarray, labels: np.ndarray, sample_weight: np.ndarray | None = None) -> Model:
        """Clone the estimator's settings and fit it on these rows with these weights."""
        from sklearn.base import clone

        fresh = clone(self.estimator)
        fresh.fit(features, np.asarray(labels, dtype=float), sample_weight=sample_weight)
        return SklearnRegressor(fresh)

    def save(self, directory: Path) -> dict[str, Any]:
        """Pickle the estimator into ``model.pkl`` (readable by this user only)."""
        return SklearnModel.save(self, directory)  # type: ignore[arg-type]


def sklearn_model(estimator: Any) -> Model:
    """A classifier (``predict_proba`` and ``classes_``) or else a regressor, by what the estimator has."""
    if callable(getattr(estimator, "predict_proba", None)) and hasattr(estimator, "classes_"):
        return SklearnModel(estimator)
    return SklearnRegressor(estimator)


class TorchModel(Model):
    """A torch module built by ``factory`` and loaded from a state dict: class logits, or (``task="regression"``)
    one number per row."""

    loader = "torch"

    def __init__(self, module: Any, classes: Any, factory: str, factory_options: Mapping[str, Any] | None = None,
                 refit_options: Mapping[str, Any] | None = None, task: str = "classification") -> None:
        if task not in TASKS:
            raise ModelLoadError(f"a torch model's task must be one of {', '.join(TASKS)} (got {task!r})")
        self.module = module
        self.task = task
        self.classes = np.empty(0) if task == "regression" else np.asarray(classes)
        self.factory = factory
        self.factory_options = dict(factory_options or {})
        self.refit_options = dict(refit_options or {})

    def _outputs(self, features: np.ndarray) -> Any:
        """The module's outputs on these rows, computed without gradients."""
        import torch

        self.module.eval()
        with torch.no_grad():
            return self.module(torch.as_tensor(np.asarray(features), dtype=torch.float32))

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Softmax of the module's logits, computed without gradients."""
        import torch

        if self.task == "regression":
            raise ModelLoadError(f"the torch model ({self.factory}) is a regressor: it has no class probabilities")
        return torch.softmax(self._outputs(features), dim=1).double().numpy()

    def predict(self, features: np.ndarray) -> np.ndarray:
        """The most probable class of each row; a regressor: the module's single output, as floats."""
        if self.task != "regression":
            return super().predict(features)
        return regression_output(self._outputs(features), len(features), self.factory).double().numpy()

    def refit(self, features: np.ndarray, labels: np.ndarray, sample_weight: np.ndarray | None = None) -> Model:
        """A fresh module from the factory, trained on these rows with weighted cross-entropy (a regressor: weighted
        squared error) by Adam.

        The loader's ``refit`` options set ``epochs`` (30), ``lr`` (0.01), ``batch_size`` (64), ``seed`` (0)."""
        import torch

        settings = {"epochs": 30, "lr": 1e-2, "batch_size": 64, "seed": 0, **self.refit_options}
        target = self._training_target(labels)
        weights = torch.as_tensor(np.ones(len(target)) if sample_weight is None else sample_weight,
                                  dtype=torch.float32)
        inputs = torch.as_tensor(np.asarray(features), dtype=torch.float32)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(settings["seed"]))
            module = call_factory(self.factory, self.factory_options)
            optimizer = torch.optim.Adam(module.parameters(), lr=float(settings["lr"]))
            generator = torch.Generator().manual_seed(int(settings["seed"]))
            module.train()
            for _ in range(int(settings["epochs"])):
                for batch in torch.randperm(len(target), generator=generator).split(int(settings["batch_size"])):
                    losses = self.row_losses(module(inputs[batch]), target[batch])
                    loss = (losses * weights[batch]).sum() / weights[batch].sum().clamp_min(1e-12)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
        module.eval()
        return TorchModel(module, self.classes, self.factory, self.factory_options, self.refit_options, self.task)

    def _training_target(self, labels: np.ndarray) -> Any:
        """Labels as class indices (a regressor: finite floats); ModelLoadError names one the model cannot learn."""
        import torch

        if self.task == "regression":
            try:
                values = np.asarray(labels, dtype=np.float64)
            except (TypeError, ValueError):
                raise ModelLoadError("a regression model's labels must be numbers") from None
            if not np.isfinite(values).all():
                raise ModelLoadError(f"{int((~np.isfinite(values)).sum())} labels are not finite numbers")
            return torch.as_tensor(values, dtype=torch.float32)
        lookup = {value: index for index, value in enumerate(self.classes.tolist())}
        try:
            return torch.as_tensor([lookup[value] for value in np.asarray(labels).tolist()])
        except KeyError as error:
            raise ModelLoadError(f"label {error.args[0]!r} is not among the model's classes "
                                 f"{self.classes.tolist()}") from None

    def row_losses(self, outputs: Any, target: Any) -> Any:
        """Per-row training loss: cross-entropy of the logits, or squared error of a regressor's output."""
        import torch

        if self.task == "regression":
            return (regression_output(outputs, len(target), self.factory) - target) ** 2
        return torch.nn.functional.cross_entropy(outputs, target, reduction="none")

    def embed(self, features: np.ndarray) -> np.ndarray | None:
        """The module's ``embed`` output, when the module has one."""
        embed = getattr(self.module, "embed", None)
        if not callable(embed):
            return None
        import torch

        self.module.eval()
        with torch.no_grad():
            return embed(torch.as_tensor(np.asarray(features), dtype=torch.float32)).double().numpy()

    def save(self, directory: Path) -> dict[str, Any]:
        """Write the state dict into ``model.pt`` (loaded back with ``weights_only=True``)."""
        import torch

        path = directory / "model.pt"
        with open(path, "wb", opener=_private_opener) as handle:
            torch.save(self.module.state_dict(), handle)
        options: dict[str, Any] = {"factory": self.factory, "factory_options": self.factory_options,
                                   "refit": self.refit_options}
        if self.task == "regression":
            options["task"] = self.task
        else:
            options["classes"] = self.classes.tolist()
        return {"loader": self.loader, "file": path.name, "options": options}


#: What a torch model predicts: class logits, or one number per row.
TASKS = ("classification", "regression")


def regression_output(outputs: Any, rows: int, factory: str) -> Any:
    """A regressor module's outputs as one number per row ((rows,) or (rows, 1)); ModelLoadError otherwise."""
    if tuple(outputs.shape) not in ((rows,), (rows, 1)):
        raise ModelLoadError(f"the torch regressor ({factory}) must return one number per row, shaped ({rows},) "
                             f"or ({rows}, 1); it returned {tuple(outputs.shape)}")
    return outputs.reshape(rows)


class AdaptedModel(Model):
    """A base model behind a feature map (applied to inputs) and/or a class-prior correction."""

    def __init__(self, base: Model, input_map: AffineMap | None = None, prior_ratios: np.ndarray | None = None) -> None:
        self.base = base
        self.input_map = input_map
        self.prior_ratios = None if prior_ratios is None else np.asarray(prior_ratios, dtype=float)
        self.classes = base.classes
        self.loader = base.loader
        self.task = getattr(base, "task", "classification")
        if self.is_regressor and self.prior_ratios is not None:
            raise ModelLoadError("a regression model has no classes to correct the priors of")

    def predict(self, features: np.ndarray) -> np.ndarray:
        """The base model's prediction on mapped inputs (classes: the most probable after the correction)."""
        if not self.is_regressor:
            return super().predict(features)
        return self.base.predict(features if self.input_map is None else self.input_map(features))

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """The base model's probabilities on mapped inputs, re-weighted by the prior ratios."""
        inputs = features if self.input_map is None else self.input_map(features)
        proba = self.base.predict_proba(inputs)
        if self.prior_ratios is not None:
            proba = proba * self.prior_ratios
            proba /= np.clip(proba.sum(axis=1, keepdims=True), 1e-300, None)
        return proba

    def embed(self, features: np.ndarray) -> np.ndarray | None:
        """The base model's representation of the mapped inputs."""
        return self.base.embed(features if self.input_map is None else self.input_map(features))

    def refit(self, features: np.ndarray, labels: np.ndarray, sample_weight: np.ndarray | None = None) -> Model:
        """Retrain the base model (the map and the prior correction are kept)."""
        inputs = features if self.input_map is None else self.input_map(features)
        return AdaptedModel(self.base.refit(inputs, labels, sample_weight), self.input_map, self.prior_ratios)

    def save(self, directory: Path) -> dict[str, Any]:
        """The base model's files, plus the map and the ratios in the manifest."""
        entry = self.base.save(directory)
        if self.input_map is not None:
            entry["input_map"] = self.input_map.to_json()
        if self.prior_ratios is not None:
            entry["prior_ratios"] = self.prior_ratios.tolist()
        return entry


class EnsembleModel(Model):
    """A weighted average of models' class probabilities (or of regressors' predictions)."""

    loader = "ensemble"

    def __init__(self, members: list[Model], weights: Any) -> None:
        if not members or len(members) != len(weights):
            raise ModelLoadError(f"an ensemble needs one weight per member (got {len(members)} and {len(weights)})")
        self.members = list(members)
        self.weights = np.asarray(weights, dtype=float) / float(np.sum(weights))
        self.classes = members[0].classes
        self.task = getattr(members[0], "task", "classification")

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """The weighted mean of the members' probabilities."""
        return sum(weight * member.predict_proba(features) for weight, member in zip(self.weights, self.members))

    def predict(self, features: np.ndarray) -> np.ndarray:
        """The most probable class (a regressor: the weighted mean prediction)."""
        if not self.is_regressor:
            return super().predict(features)
        return sum(weight * member.predict(features) for weight, member in zip(self.weights, self.members))

    def save(self, directory: Path) -> dict[str, Any]:
        """Each member in ``member-<i>/`` with its manifest entry; the weights in this one."""
        entries = []
        for index, member in enumerate(self.members):
            folder = directory / f"member-{index}"
            folder.mkdir(mode=0o700)
            entries.append({"folder": folder.name, **member.save(folder)})
        return {"loader": self.loader, "members": entries, "weights": self.weights.tolist()}


def is_regressor(model: object) -> bool:
    """Whether a model (or a duck-typed one without ``task``: a classifier) predicts numbers."""
    return getattr(model, "task", "classification") == "regression"


def unwrap(model: Model) -> tuple[Model, AffineMap | None, np.ndarray | None]:
    """The base model, input map and prior ratios of a model (plain models have neither)."""
    if isinstance(model, AdaptedModel):
        return model.base, model.input_map, model.prior_ratios
    return model, None, None


def call_factory(factory: str, options: Mapping[str, Any]) -> Any:
    """Import ``package.module:callable`` and call it with ``options`` (a name from trusted config)."""
    module_name, _, attribute = factory.partition(":")
    if not module_name or not attribute:
        raise ModelLoadError(f"factory {factory!r} must look like 'package.module:function'")
    try:
        function = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ModelLoadError(f"factory {factory!r} cannot be imported: {error}") from None
    return function(**dict(options))


def load_pickle(path: Path) -> Any:
    """Unpickle a file that only this user (or root) can have written.

    Unpickling runs code, so the file and its folder must be owned by this user or root and not
    writable by group or others, as ssh demands of its keys. Anything else is refused.
    """
    for checked in (path, path.parent):
        try:
            info = checked.stat()
        except OSError as error:
            raise ModelLoadError(f"{path}: cannot read: {error.strerror}") from None
        if info.st_uid not in (os.getuid(), 0):
            raise ModelLoadError(f"{path}: refusing to unpickle: {checked} is owned by another user")
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not (checked.is_dir() and info.st_mode & stat.S_ISVTX):
            raise ModelLoadError(f"{path}: refusing to unpickle: {checked} is writable by group or others "
                                 f"(chmod go-w {checked})")
    try:
        if path.suffix == ".joblib":
            import joblib
            return joblib.load(path)
        with open(path, "rb") as handle:
            return pickle.load(handle)  # noqa: S301 - trusted by the checks above
    except Exception as error:  # noqa: BLE001 - any unpickling failure is a load error
        raise ModelLoadError(f"{path}: cannot load the model: {type(error).__name__}: {error}") from None


def load_sklearn(path: Path, options: Mapping[str, Any]) -> Model:
    """A scikit-learn classifier or regressor from a pickle or joblib file."""
    return sklearn_model(load_pickle(path))


def load_torch(path: Path, options: Mapping[str, Any]) -> Model:
    """A torch module: ``options.factory`` builds it, the file holds its state dict (weights only).

    ``options.task`` is ``classification`` (default: ``classes`` name the logits' columns) or ``regression``
    (the module returns one number per row; no classes)."""
    import torch

    factory, classes = options.get("factory"), options.get("classes")
    task = str(options.get("task") or "classification")
    if task not in TASKS:
        raise ModelLoadError(f"{path}: option 'task' must be one of {', '.join(TASKS)} (got {task!r})")
    if not factory or (classes is None and task == "classification"):
        raise ModelLoadError(f"{path}: a torch model needs options 'factory' (package.module:function) and 'classes' "
                             f"(or 'task: regression')")
    if task == "regression" and classes:
        raise ModelLoadError(f"{path}: a torch regressor has no classes (drop option 'classes' or 'task: regression')")
    module = call_factory(str(factory), options.get("factory_options") or {})
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
        module.load_state_dict(state)
    except Exception as error:  # noqa: BLE001
        raise ModelLoadError(f"{path}: cannot load the torch state dict: {type(error).__name__}: {error}") from None
    return TorchModel(module, classes, str(factory), options.get("factory_options") or {}, options.get("refit") or {},
                      task)


def write_manifest(directory: Path, entry: Mapping[str, Any]) -> None:
    """Write ``manifest.json`` last, so a folder with a manifest is a complete version."""
    temporary = directory / "manifest.json.tmp"
    temporary.write_text(json.dumps(dict(entry), indent=2), encoding="utf-8")
    os.replace(temporary, directory / "manifest.json")


def _private_opener(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)
