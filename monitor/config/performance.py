"""A monitor's ``performance:`` section: where the model's outputs and labels are, what to estimate, when to alert."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from monitor.config.strict import _Strict


REGRESSION_METRICS = ("mae", "rmse")
#: A class given as a number (labels are often 0, 1, …): any 64-bit integer.
ClassNumber = Annotated[int, Field(ge=-(2 ** 63), le=2 ** 63 - 1)]


class PerformanceAlertConfig(_Strict):
    """When an estimated drop raises the monitor's state (independent of feature drift)."""

    metrics: list[str] | None = Field(None, description="metrics that may alert (default: every estimated one)")
    drop: float | None = Field(None, gt=0, le=1e12,
                               description="alert when a metric is this much worse than on the reference")
    below_reference: bool = Field(True, description="alert when a metric leaves the band it kept on the reference")
    state: Literal["warning", "drift"] = Field("drift", description="the state an alert raises the window to")
    realized: bool = Field(False, description="also alert when a window's realized metric (once it has "
                           "labels.min_labels labels) drops the same way")


class PerformanceConfig(_Strict):
    """The model's outputs as inputs: performance estimated per window without labels (CBPE, DLE)."""

    task: Literal["classification", "regression"] = "classification"
    target: str = Field(min_length=1, description="the label (or target value) column of the labelled reference rows")
    prediction: str | None = Field(None, min_length=1, description="the column with the model's prediction")
    probabilities: list[str] = Field(default_factory=list,
                                     description="one column per class, or one with the positive class's score")
    classes: list[str] = Field(default_factory=list, description="the classes, in probabilities order "
                               "(numbers are read as their text: 1 and '1' are the same class)")
    positive_class: str | ClassNumber | None = Field(None, description="the class F1/precision/recall are about")
    metrics: list[Literal["accuracy", "f1", "precision", "recall", "roc_auc", "mae", "rmse"]] = Field(
        default_factory=list, description="default: every metric the task has")
    reference: str | None = Field(None, description="labelled rows with the model's outputs (CSV/Parquet/JSON "
                                  "lines); default: reference.path, then model.training_data")
    chunk_rows: int | None = Field(None, ge=10, le=100_000_000,
                                   description="reference chunk size for the intervals (default: a tenth)")
    max_outside_share: float = Field(0.015, ge=0, le=1,
                                     description="share of window rows off the reference's support that makes "
                                                 "an estimate unreliable")
    alert: PerformanceAlertConfig | None = None
    labels: LabelsConfig | None = Field(None, description="where true labels arrive later (realized performance)")

    @property
    def reads_outputs(self) -> bool:
        """Whether the model's outputs are columns of the live rows (else the configured model computes them)."""
        return bool(self.prediction or self.probabilities)

    @property
    def label_column(self) -> str:
        """The label column of the label rows."""
        return (self.labels.column if self.labels and self.labels.column else None) or self.target

    @field_validator("classes", mode="before")
    @classmethod
    def _class_names(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [str(item) if isinstance(item, int) and not isinstance(item, bool) else item for item in value]
        return value

    @field_validator("probabilities", mode="before")
    @classmethod
    def _one_column(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _outputs_named(self) -> PerformanceConfig:
        if self.task == "regression" and self.probabilities:
            raise ValueError("performance: a regressor has no probabilities; name its 'prediction' column")
        wrong = [m for m in self.metrics if (m in REGRESSION_METRICS) != (self.task == "regression")]
        if wrong:
            raise ValueError(f"performance: {wrong} are not {self.task} metrics")
        if self.classes and len(self.probabilities) > 1 and len(self.classes) != len(self.probabilities):
            raise ValueError(f"performance: {len(self.probabilities)} probabilities columns for "
                             f"{len(self.classes)} classes")
        if self.alert is not None and self.alert.realized and self.labels is None:
            raise ValueError("performance: alert.realized needs labels (where the true labels arrive)")
        return self

    @property
    def output_columns(self) -> list[str]:
        """The live columns the estimate reads besides the features."""
        return [*([self.prediction] if self.prediction else []), *self.probabilities,
                *([self.labels.key] if self.labels else [])]


class LabelsConfig(_Strict):
    """Where true labels arrive later, and how they are joined to the windows' rows."""

    source: dict[str, Any] = Field(description="a connector ({type, options}) that reads the label rows")
    key: str = Field(min_length=1, description="the id column (join: time: the time column), in the live rows "
                     "and in the label rows")
    join: Literal["key", "time"] = Field("key", description="key: labels join rows with the same id; time: with "
                                         "the same instant (values read as times, compared in UTC to the microsecond)")
    column: str | None = Field(None, min_length=1, description="the label column of the label rows "
                               "(default: performance.target)")
    min_labels: int = Field(30, ge=1, le=100_000_000,
                            description="labels a window needs before its realized performance is stored")
    max_rows: int = Field(10_000, ge=1, le=100_000_000, description="label rows fetched per tick at most")
    max_pending: int = Field(100_000, ge=0, le=100_000_000,
                             description="labels kept waiting for their row to arrive; older ones are dropped")
    max_windows: int = Field(1_000, ge=1, le=1_000_000,
                             description="latest windows that still take labels")

    @field_validator("source")
    @classmethod
    def _a_connector(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(value.get("type"), str) or set(value) - {"type", "options"}:
            raise ValueError("labels.source takes 'type' and 'options', like a monitor's source")
        return value


PerformanceConfig.model_rebuild()
