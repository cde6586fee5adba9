"""The ``rebaseline`` adapter: make the event's recent target windows the new active reference.

It runs after the gate, and only when another adapter's challenger was promoted (the new normal
has a model that fits it), when the monitor has no model at all, or when an operator asks
(``driftd adaptations rebaseline``). The daemon stores the new reference version; this adapter
checks that the rows are enough to be one.
"""

from __future__ import annotations

from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, Field

from monitor.plugin import (
    AdaptationContext,
    AdaptationResult,
    Adapter,
    AdapterError,
    hookimpl,
    parse_adapter_options,
)


class RebaselineOptions(BaseModel):
    """Options of the ``rebaseline`` adapter."""

    model_config = ConfigDict(extra="forbid")
    min_rows: int = Field(100, ge=2, description="target rows needed to become a reference")


class Rebaseline(Adapter):
    """Proposes the target domain as the new reference."""

    type_name = "rebaseline"
    needs_model = False

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.settings = parse_adapter_options(RebaselineOptions, options, self.type_name)

    def adapt(self, ctx: AdaptationContext) -> AdaptationResult:
        """Check there are enough target rows; the daemon stores them as the new reference."""
        ctx.check_cancelled()
        if ctx.target.rows < self.settings.min_rows:
            raise AdapterError(f"only {ctx.target.rows} target rows; a new reference needs at least "
                               f"{self.settings.min_rows} (rebaseline min_rows)")
        return AdaptationResult(remedy="reference", assumption="none", details={"rows": ctx.target.rows})


@hookimpl
def driftd_adapters() -> Mapping[str, type]:
    """The rebaseline adapter."""
    return {Rebaseline.type_name: Rebaseline}
