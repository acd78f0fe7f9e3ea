"""Frozen, validated options of every stage, and of ``gdo run`` that chains them.

One config object per stage (:class:`IngestConfig`, :class:`ProfileConfig`, :class:`SelectConfig`,
:class:`ExportConfig`, :class:`ReportConfig`) and :class:`RunConfig` composed of them. The CLI
commands and :func:`gdo.run.run` build these objects; the stage layer (:mod:`gdo.stages`) takes
them. Every option is checked here, once, when the object is built: ``mode`` is ``default`` or
``paper``, a budget is ``auto`` or a non-negative integer, a preset exists, a goal file parses,
export formats are known. An unknown option is an error (``extra="forbid"``), never dropped.

Objects are immutable (``frozen=True``): use ``cfg.model_copy(update={...})`` for a variant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Mode = Literal["default", "paper"]

__all__ = ["ConfigError", "ExportConfig", "IngestConfig", "Mode", "ProfileConfig", "ReportConfig", "RunConfig",
           "SelectConfig", "parse_budget"]


class ConfigError(ValueError):
    """An invalid stage option; the message names the option and the accepted values."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    @classmethod
    def make(cls, **options: Any):
        """Build and validate; raise :class:`ConfigError` naming each bad option (never a traceback dump).

        Raises:
            ConfigError: an unknown option or a value outside its accepted range.
        """
        try:
            return cls(**options)
        except ValidationError as e:
            raise ConfigError(_format(e, cls.__name__)) from None


def _format(err: ValidationError, where: str) -> str:
    """One line per bad option, named as its CLI flag (``--budget: ...``)."""
    parts = []
    for d in err.errors():
        loc = [str(x) for x in d.get("loc", ()) if not str(x).isdigit()]
        msg = "unknown option" if d.get("type") == "extra_forbidden" else d.get("msg", "invalid")
        msg = msg.removeprefix("Value error, ")
        if d.get("type") not in ("extra_forbidden", "value_error") and "input" in d \
                and not isinstance(d["input"], (dict, BaseModel)):
            msg += f" (got {d['input']!r})"
        parts.append(f"--{loc[-1].replace('_', '-')}: {msg}" if loc else msg)
    return "; ".join(parts) or f"invalid {where}"


def parse_budget(budget: Union[str, int, None]) -> Union[int, Literal["auto"]]:
    """``auto`` / None -> ``"auto"`` (GDO_METHOD.md 5 auto budget); a non-negative integer -> that size.

    Raises:
        ValueError: anything else (a negative number, a float, text other than ``auto``).
    """
    if budget is None:
        return "auto"
    if isinstance(budget, bool):
        raise ValueError(f"budget must be 'auto' or a non-negative integer, not {budget!r}")
    if isinstance(budget, int):
        n = budget
    else:
        s = str(budget).strip().lower()
        if s == "auto":
            return "auto"
        try:
            n = int(s)
        except ValueError:
            raise ValueError(f"budget must be 'auto' or a non-negative integer, not {budget!r}") from None
    if n < 0:
        raise ValueError(f"budget must be a non-negative integer, not {n}")
    return n


class IngestConfig(_Frozen):
    """Options of ingestion (pool files -> candidates; docs/DESIGN.md "candidates.parquet").

    Attributes:
        media_root: folder media paths resolve against and are confined to (None: each pool
            file's folder).
        fmt: force a row format (None: auto-detect per file).
        frames: T, frames a video is sampled to (GDO_METHOD.md 2); >= 1.
        workers: processes parsing large JSONL files; 0 = one per CPU (at most 8).
        probe_media: open media files (checks, video facts). ``gdo select`` ingests without.
        media_columns: keep the ``media`` / ``media_raw`` path lists (False: lean mode).
    """

    media_root: Optional[Path] = None
    fmt: Optional[str] = None
    frames: int = Field(32, ge=1)
    workers: int = Field(1, ge=0)
    probe_media: bool = True
    media_columns: bool = True


class ProfileConfig(_Frozen):
    """Options of :func:`gdo.descriptors.profile.profile` (one field per keyword it takes).

    Attributes:
        descriptors: descriptor groups to compute (None: all).
        workers: processes for the media stage (>= 1; output identical for any value).
        mode: ``default`` | ``paper``.
        model: local VLM folder for VDS / PPL / SC / TNC judge (None: those columns stay null).
        media_root, fmt, frames: as in :class:`IngestConfig` (profile ingests pool files itself).
        k: clusters (None: the mode's k rule). seed: clustering and model stage.
        visual_encoder: local CLIP/SigLIP folder (None: weight-free visual features).
        text_encoder: ``minilm`` | ``hashing`` | a local sentence-transformers folder.
        batch_size: model batch size. model_frames: frames per video the model sees (None: ``frames``).
        device: ``auto`` | ``cpu`` | ``cuda`` (or ``cuda:N``). trust_remote_code: allow the model's own code.
        progress: progress bars.
    """

    descriptors: Optional[tuple[str, ...]] = None
    workers: int = Field(1, ge=1)
    mode: Mode = "default"
    model: Optional[Path] = None
    media_root: Optional[Path] = None
    fmt: Optional[str] = None
    frames: int = Field(32, ge=1)
    k: Optional[int] = Field(None, ge=1)
    seed: int = 42
    visual_encoder: Optional[Path] = None
    text_encoder: str = "minilm"
    batch_size: int = Field(8, ge=1)
    model_frames: Optional[int] = Field(None, ge=1)
    device: str = "auto"
    trust_remote_code: bool = False
    progress: bool = False
    engine: str = "local"
    address: Optional[str] = None
    devices: Optional[tuple[int, ...]] = None

    @field_validator("descriptors", mode="before")
    @classmethod
    def _groups(cls, v):
        from gdo.descriptors.config import split_groups

        return split_groups(v)

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if v not in ("auto", "cpu", "cuda", "mps") and not v.startswith("cuda:"):
            raise ValueError(f"device must be auto, cpu, cuda, cuda:N or mps, not {v!r}")
        return v

    @model_validator(mode="after")
    def _registry_rules(self):
        self.descriptor_config()  # the registry's ProfileConfig owns the rules (groups, engine, devices)
        return self

    def descriptor_config(self):
        """The :class:`gdo.descriptors.config.ProfileConfig` of these options (raises ValueError)."""
        from gdo.descriptors.config import ProfileConfig as DescriptorConfig

        kw = self.profile_kwargs()
        kw.pop("media_root")
        kw.pop("fmt")
        return DescriptorConfig(**kw)

    def profile_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :func:`gdo.descriptors.profile.profile` (every field, none dropped)."""
        return {"descriptors": list(self.descriptors) if self.descriptors else None, "workers": self.workers,
                "mode": self.mode, "model": str(self.model) if self.model else None,
                "media_root": self.media_root, "frames": self.frames, "k": self.k, "seed": self.seed,
                "progress": self.progress, "visual_encoder": self.visual_encoder,
                "text_encoder": self.text_encoder, "fmt": self.fmt, "model_batch_size": self.batch_size,
                "device": self.device, "trust_remote_code": self.trust_remote_code,
                "model_frames": self.model_frames, "engine": self.engine, "address": self.address,
                "devices": self.devices}


class SelectConfig(_Frozen):
    """Options of selection (GDO_METHOD.md 4-5; :func:`gdo.selection.select.select`).

    Exactly one of ``preset`` and ``goal``. A goal file is parsed here, so a bad goal fails before
    any stage runs.

    Attributes:
        preset: ``minloss`` | ``diverse`` | ``temp`` | ``temp_plus``.
        goal: a TOML/YAML goal file.
        mode: ``default`` | ``paper``. seed: tie draws, random fill, baseline.
        budget: ``"auto"`` or a subset size (>= 0; strings are parsed).
        baseline_mult: Uni-Nx multiplier (> 0; None: the goal's).
        allow_random_fill, no_vds, no_ppl, no_sc, no_vds_budget: as in ``gdo select --help``.
        goal_set: goal-set files (issue 15, :mod:`gdo.goalset`); embeddings: the pool's embedding
            store (default: embeddings.parquet beside the descriptors).
        model: the reference model the pool was profiled with: with a goal set whose items carry
            media, it embeds the goal items so that relevance also uses the model's hidden-state
            space (:mod:`gdo.selection.relevance`); device, batch_size, trust_remote_code: for it.
    """

    preset: Optional[str] = None
    goal: Optional[Path] = None
    mode: Mode = "default"
    seed: int = 42
    budget: Union[int, Literal["auto"]] = "auto"
    baseline_mult: Optional[float] = Field(None, gt=0)
    allow_random_fill: bool = False
    no_vds: bool = False
    no_ppl: bool = False
    no_sc: bool = False
    no_vds_budget: bool = False
    goal_set: Optional[tuple[str, ...]] = None
    embeddings: Optional[Path] = None
    model: Optional[Path] = None
    device: str = "auto"
    batch_size: int = Field(8, ge=1)
    trust_remote_code: bool = False

    @field_validator("goal_set", mode="before")
    @classmethod
    def _goal_set(cls, v):
        if v is None:
            return None
        if isinstance(v, (str, Path)):
            v = [v]
        return tuple(str(p) for p in v) or None

    @field_validator("budget", mode="before")
    @classmethod
    def _budget(cls, v):
        return parse_budget(v)

    @field_validator("preset")
    @classmethod
    def _preset(cls, v):
        if v is None:
            return v
        from gdo.selection.presets import get_preset

        try:
            get_preset(v)
        except KeyError as e:
            raise ValueError(str(e.args[0] if e.args else e)) from None
        return v

    @model_validator(mode="after")
    def _one_goal(self):
        if (self.preset is None) == (self.goal is None):
            raise ValueError("give exactly one of --preset and --goal")
        if self.goal is not None:
            from gdo.selection.goalfile import load_goal

            load_goal(self.goal)  # GoalError (a ValueError) names the file and the key
        return self

    @property
    def goal_label(self) -> str:
        """The preset name or the goal file, for messages."""
        return self.preset if self.goal is None else str(self.goal)

    def select_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :func:`gdo.selection.select.select` (every field, none dropped)."""
        return {"preset": self.preset, "mode": self.mode, "seed": self.seed, "budget": self.budget,
                "baseline_mult": self.baseline_mult, "allow_random_fill": self.allow_random_fill,
                "no_vds": self.no_vds, "no_ppl": self.no_ppl, "no_sc": self.no_sc,
                "no_vds_budget": self.no_vds_budget,
                "goal_set": list(self.goal_set) if self.goal_set else None,
                "goal_model": ({"path": str(self.model), "device": self.device, "batch_size": self.batch_size,
                                "trust_remote_code": self.trust_remote_code} if self.model is not None else None)}


class ExportConfig(_Frozen):
    """Trainer exports of the subset and the baseline (``swift``, ``llamafactory``, ``llava``).

    ``formats`` accepts a comma-separated string or a sequence (each item may hold commas).
    ``context``: keep the earlier turns of a multi-turn row before the chosen turn (``--export-context``).
    """

    formats: tuple[str, ...] = ()
    context: bool = False

    @field_validator("formats", mode="before")
    @classmethod
    def _formats(cls, v):
        if v is None:
            return ()
        if isinstance(v, str):
            v = [v]
        out = [e.strip().lower() for x in v for e in str(x).split(",") if e.strip()]
        from gdo.export import EXPORTERS

        bad = [e for e in out if e not in EXPORTERS]
        if bad:
            raise ValueError(f"unknown export format(s) {bad}; choose from {sorted(EXPORTERS)}")
        return tuple(dict.fromkeys(out))


class ReportConfig(_Frozen):
    """report.html options: ``examples`` top and bottom candidates shown, ``thumbnails`` decoded."""

    examples: int = Field(5, ge=0)
    thumbnails: bool = True


class RunConfig(_Frozen):
    """``gdo run``: the configs of the stages it chains. Shared options agree across stages.

    Build it from the flat options of ``gdo run`` with :meth:`from_options`.
    """

    ingest: IngestConfig = IngestConfig()
    profile: ProfileConfig = ProfileConfig()
    select: SelectConfig = SelectConfig(preset="temp_plus")
    export: ExportConfig = ExportConfig()
    report: ReportConfig = ReportConfig()
    progress: bool = True

    @model_validator(mode="after")
    def _agree(self):
        i, p, s = self.ingest, self.profile, self.select
        if p.mode != s.mode:
            raise ValueError(f"profile mode {p.mode!r} differs from select mode {s.mode!r}")
        if p.seed != s.seed:
            raise ValueError(f"profile seed {p.seed} differs from select seed {s.seed}")
        if (i.frames, i.media_root, i.fmt) != (p.frames, p.media_root, p.fmt):
            raise ValueError("ingest and profile disagree on frames / media_root / fmt")
        return self

    @classmethod
    def from_options(cls, *, preset: Optional[str] = None, goal: Optional[Union[str, Path]] = None,
                     model: Optional[Union[str, Path]] = None, mode: str = "default", workers: int = 1,
                     media_root: Optional[Union[str, Path]] = None, fmt: Optional[str] = None,
                     exports: Any = (), budget: Union[str, int, None] = "auto", seed: int = 42, frames: int = 32,
                     baseline_mult: Optional[float] = None, descriptors: Any = None, k: Optional[int] = None,
                     visual_encoder: Optional[Union[str, Path]] = None, text_encoder: str = "minilm",
                     batch_size: int = 8, model_frames: Optional[int] = None, device: str = "auto",
                     trust_remote_code: bool = False, no_vds: bool = False, no_ppl: bool = False,
                     no_sc: bool = False, no_vds_budget: bool = False, allow_random_fill: bool = False,
                     thumbnails: bool = True,
                     examples: int = 5, progress: bool = True, engine: str = "local",
                     address: Optional[str] = None, devices: Any = None,
                     export_context: bool = False, goal_set: Any = None) -> "RunConfig":
        """The flat options of ``gdo run`` (one per CLI flag) -> a validated RunConfig.

        Shared options (mode, seed, frames, media_root, fmt, workers) go to every stage that takes
        them. Without ``preset`` and ``goal`` the preset is ``temp_plus``.

        Raises:
            ConfigError: a bad value (named), both ``preset`` and ``goal``, an unknown preset, a bad
                goal file or export format. An unknown keyword is a TypeError (Python's own).
        """
        if preset is None and goal is None:
            preset = "temp_plus"
        try:
            return cls(
                ingest=IngestConfig.make(media_root=media_root, fmt=fmt, frames=frames, workers=workers),
                profile=ProfileConfig.make(descriptors=descriptors, workers=workers, mode=mode, model=model,
                                           media_root=media_root, fmt=fmt, frames=frames, k=k, seed=seed,
                                           visual_encoder=visual_encoder, text_encoder=text_encoder,
                                           batch_size=batch_size, model_frames=model_frames, device=device,
                                           trust_remote_code=trust_remote_code, progress=progress,
                                           engine=engine, address=address, devices=devices),
                select=SelectConfig.make(preset=preset, goal=goal, mode=mode, seed=seed, budget=budget,
                                         baseline_mult=baseline_mult, allow_random_fill=allow_random_fill,
                                         no_vds=no_vds, no_ppl=no_ppl, no_sc=no_sc,
                                         no_vds_budget=no_vds_budget, goal_set=goal_set, model=model,
                                         device=device, batch_size=batch_size,
                                         trust_remote_code=trust_remote_code),
                export=ExportConfig.make(formats=exports, context=export_context),
                report=ReportConfig.make(examples=examples, thumbnails=thumbnails),
                progress=progress)
        except ValidationError as e:
            raise ConfigError(_format(e, "RunConfig")) from None

