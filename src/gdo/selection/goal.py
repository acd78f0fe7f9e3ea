"""Goal profiles: the parameters of a goal-driven selection (GDO_METHOD.md section 6).

A :class:`Goal` is a validated pydantic model. Built-in presets live in
:mod:`gdo.selection.presets`; custom goals are read from TOML or YAML files with
:func:`gdo.selection.goalfile.load_goal`. A goal file may start from a preset with ``base = "temp_plus"`` and
override some keys; unknown keys, ratios outside [0, 1], a minimum above its maximum and
similar mistakes raise :class:`GoalError` naming the file and the key.

Example ``goal.toml``::

    base = "temp_plus"
    name = "my_goal"
    max_ratio = 0.02
    min_video_ratio = 0.6

Goal sets (issue 15): ``goal_set = ["my_benchmark.jsonl"]`` (paths relative to the goal file),
``relevance_weight`` (0..1, default 0.5), ``quota_lean`` (0..1, default 0.5) and
``goal_budget_per_item`` (default 10); see :mod:`gdo.selection.relevance`.
"""

from __future__ import annotations

from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

TEMPORAL_CATEGORY_VALUES = ("Temporal", "Mixed", "Static")
TEMPORAL_RANK_VALUES = ("score", "vds_quantile")


class GoalError(ValueError):
    """A goal file or goal dict is invalid (message names the file and key)."""


class Goal(BaseModel):
    """Parameters of one selection goal (GDO_METHOD.md sections 5 and 6).

    Ratios are fractions of the budget ``n`` (video/temporal shares) or of the pool size ``N``
    (``min_ratio``, ``max_ratio``). ``temporal_categories=None`` means the mode's default:
    ``("Temporal", "Mixed")`` in paper mode (the release), ``("Temporal",)`` in default mode, where
    the Temporal category comes from the TNC judge (>= 0.5) when it ran, else the lexical rule.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "custom"
    description: str = ""
    min_count: int = Field(ge=0)
    max_count: int = Field(ge=0)
    min_ratio: float = Field(ge=0.0, le=1.0)
    max_ratio: float = Field(ge=0.0, le=1.0)
    effective_strata_mult: float = Field(ge=0.0)
    coverage_mass: float = Field(gt=0.0, le=1.0)
    tail_target: float = Field(ge=0.0)
    vds3_target_positive: float = Field(ge=0.0)
    vds3_threshold: float = 0.0
    vds3_max_mult: float = Field(ge=1.0)
    min_video_ratio: float = Field(ge=0.0, le=1.0)
    max_video_ratio: float = Field(ge=0.0, le=1.0)
    min_temporal_in_video_ratio: float = Field(ge=0.0, le=1.0)
    oversample: float = Field(ge=1.0)
    video_oversample: float = Field(ge=1.0)
    temporal_oversample: float = Field(ge=1.0)
    source_floor_topk: int = Field(ge=0)
    min_source_group_ratio: float = Field(ge=0.0, le=1.0)
    source_floor_frac_of_expected: float = Field(ge=0.0, le=1.0)
    temporal_categories: Optional[tuple[str, ...]] = None
    frames: int = Field(default=32, ge=1)
    max_qa_per_video: int = Field(default=8, ge=1)
    seed: int = 42
    baseline_mult: float = Field(default=10.0, gt=0.0)
    # goal sets (issue 15; gdo.selection.relevance): files of the user's evaluation examples, the
    # share of the ranking decided by relevance, the lean of stratum quotas toward relevant strata,
    # and the auto budget per goal item
    goal_set: Optional[tuple[str, ...]] = None
    relevance_weight: float = Field(default=0.5, ge=0.0, le=1.0)
    quota_lean: float = Field(default=0.5, ge=0.0, le=1.0)
    goal_budget_per_item: float = Field(default=10.0, gt=0.0)
    # order of the temporal-minimum fill steps (default mode only; docs/METHOD.md section 5):
    # "score" (the release: candidate score, best first) or "vds_quantile" (each temporal stratum's
    # candidates by their VDS quantile within the stratum; see gdo.selection.select.vds_quantile_order)
    temporal_rank: str = "score"

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_are_not_strings(cls, v, info):
        # a quoted "0.5" in a goal file is a mistake worth naming, not something to coerce silently
        if isinstance(v, str) and info.field_name not in ("name", "description", "temporal_categories", "goal_set",
                                                                 "temporal_rank"):
            raise ValueError(f"must be a number, not the string {v!r}")
        return v

    @model_validator(mode="after")
    def _check(self) -> "Goal":
        for lo, hi in (("min_count", "max_count"), ("min_ratio", "max_ratio"),
                       ("min_video_ratio", "max_video_ratio")):
            if getattr(self, lo) > getattr(self, hi):
                raise ValueError(f"{lo} ({getattr(self, lo)}) is above {hi} ({getattr(self, hi)})")
        if self.temporal_rank not in TEMPORAL_RANK_VALUES:
            raise ValueError(f"temporal_rank must be one of {list(TEMPORAL_RANK_VALUES)}, not {self.temporal_rank!r}")
        if self.temporal_categories is not None:
            bad = [c for c in self.temporal_categories if c not in TEMPORAL_CATEGORY_VALUES]
            if bad:
                raise ValueError(f"temporal_categories: unknown value(s) {bad}; "
                                 f"allowed {list(TEMPORAL_CATEGORY_VALUES)}")
        return self

    def temporal_set(self, mode: str) -> tuple[str, ...]:
        """Categories counted as temporal in ``mode`` ("paper" or "default")."""
        if self.temporal_categories is not None:
            return tuple(self.temporal_categories)
        return ("Temporal", "Mixed") if mode == "paper" else ("Temporal",)


def _format_validation_error(err: ValidationError, where: str) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e.get("loc", ())) or "(goal)"
        msg = e.get("msg", "")
        if e.get("type") == "extra_forbidden":
            msg = "unknown key"
        elif e.get("type") == "missing":
            msg = "required key missing"
        parts.append(f"{where}: {loc}: {msg}" + (f" (got {e['input']!r})"
                                                   if e.get("type") not in ("missing", "extra_forbidden")
                                                   and not isinstance(e.get("input"), dict) else ""))
    return "; ".join(parts)
