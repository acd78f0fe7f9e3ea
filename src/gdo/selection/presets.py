"""The four goal presets of the paper (GDO_METHOD.md section 6): minloss, diverse, temp, temp_plus;
and ``target`` for selection toward a goal set (issue 15)."""

from __future__ import annotations

from gdo.selection.goal import Goal

_TABLE = {
    #                          MinLoss  Diverse  Temp    Temp+
    "min_count":              (12000,   14000,   15000,  16000),
    "max_count":              (72000,   95000,   90000,  110000),
    "min_ratio":              (0.001,   0.001,   0.001,  0.001),
    "max_ratio":              (0.014,   0.016,   0.016,  0.018),
    "effective_strata_mult":  (16,      26,      20,     22),
    "coverage_mass":          (0.93,    0.97,    0.95,   0.95),
    "tail_target":            (3.5,     8,       10,     16),
    "vds3_target_positive":   (2600,    5000,    6500,   9000),
    "vds3_threshold":         (0,       0,       0,      0),
    "vds3_max_mult":          (1.6,     2.4,     2.4,    3.2),
    "min_video_ratio":        (0.15,    0.25,    0.35,   0.50),
    "max_video_ratio":        (0.32,    0.45,    0.50,   0.64),
    "min_temporal_in_video_ratio": (0.05, 0.15,  0.20,   0.38),
    "oversample":             (1.15,    1.28,    1.30,   1.35),
    "video_oversample":       (1.45,    1.9,     2.2,    2.9),
    "temporal_oversample":    (1.55,    2.2,     3.0,    4.2),
    "source_floor_topk":      (14,      28,      18,     16),
    "min_source_group_ratio": (0.0015,  0.0030,  0.0022, 0.0025),
    "source_floor_frac_of_expected": (0.33, 0.45, 0.38,  0.38),
}
_NAMES = ("minloss", "diverse", "temp", "temp_plus")
_DESCRIPTIONS = {
    "minloss": "MinLoss: smallest subset, fastest loss reduction (paper 1x size 12.9k)",
    "diverse": "Diverse: wide stratum coverage (paper 1x size 42.9k)",
    "temp": "Temp: temporal video reasoning (paper 1x size 33.3k)",
    "temp_plus": "Temp+: strongest temporal/video emphasis; paper's headline preset (1x size 53.3k)",
}
_ALIASES = {"temp+": "temp_plus", "tempplus": "temp_plus", "temp-plus": "temp_plus",
            "min_loss": "minloss", "min-loss": "minloss"}


def _build(i: int, name: str) -> Goal:
    vals = {k: v[i] for k, v in _TABLE.items()}
    for k in ("min_count", "max_count", "source_floor_topk"):
        vals[k] = int(vals[k])
    return Goal(name=name, description=_DESCRIPTIONS[name], temporal_categories=None,
                frames=32, max_qa_per_video=8, seed=42, baseline_mult=10.0, **vals)


#: ``target``: selection for a goal set (issue 15; gdo.selection.relevance). Sized for budgets
#: from 100 up on pools from 1,000 up: auto budget ``min(N, max(100, min(ceil(10*m), floor(0.2*N),
#: 50000)))`` for m goal items (without a goal set the section-5 auto budget with these numbers);
#: no video-share, temporal or source-floor constraints unless a goal file sets them; relevance
#: decides 80% of the ranking and quotas follow where relevant candidates live.
TARGET = Goal(
    name="target", description="Target: the candidates closest to your goal set (--goal-set), budgets from 100 up",
    min_count=100, max_count=50000, min_ratio=0.0, max_ratio=0.2, effective_strata_mult=4.0, coverage_mass=0.9,
    tail_target=2.0, vds3_target_positive=0.0, vds3_threshold=0.0, vds3_max_mult=1.0, min_video_ratio=0.0,
    max_video_ratio=1.0, min_temporal_in_video_ratio=0.0, oversample=2.0, video_oversample=2.0,
    temporal_oversample=2.0, source_floor_topk=0, min_source_group_ratio=0.0, source_floor_frac_of_expected=0.0,
    temporal_categories=None, frames=32, max_qa_per_video=8, seed=42, baseline_mult=10.0,
    relevance_weight=0.8, quota_lean=1.0, goal_budget_per_item=10.0)

#: name -> Goal, in the paper's order, then ``target``.
PRESETS: dict[str, Goal] = {name: _build(i, name) for i, name in enumerate(_NAMES)}
PRESETS["target"] = TARGET

#: Parameter names in display order.
PRESET_PARAMS: tuple[str, ...] = tuple(_TABLE) + ("temporal_categories", "frames", "max_qa_per_video",
                                                 "seed", "baseline_mult", "relevance_weight", "quota_lean",
                                                 "goal_budget_per_item")


def get_preset(name: str) -> Goal:
    """Return the preset called ``name`` (case-insensitive; ``temp+`` is ``temp_plus``).

    Raises:
        KeyError: unknown name (the message lists the known presets).
    """
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}")
    return PRESETS[key]


def preset_rows(mode: str = "paper") -> list[dict]:
    """One dict per preset with every parameter (temporal_categories resolved for ``mode``)."""
    rows = []
    for name, g in PRESETS.items():
        d = g.model_dump()
        d["temporal_categories"] = list(g.temporal_set(mode))
        rows.append(d)
    return rows
