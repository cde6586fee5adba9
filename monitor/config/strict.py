"""The base of every configuration model: unknown keys are errors, numbers plain and finite."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from monitor.config.values import check_plain_value


class _Strict(BaseModel):
    """Unknown keys are errors; numbers are finite and never booleans (``check_plain_value``), in every field."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _plain_values(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        return value if field is None else check_plain_value(value, field.annotation)
