"""``ProfileConfig``: the frozen, validated options of the profile stage (``gdo profile``).

One object carries every option that changes what :func:`gdo.descriptors.profile.profile`
computes or how it runs; it is validated once, here (``mode``, descriptor groups, positive
sizes), so the stage code and the executors never re-check. ``gdo.config`` composes it with the
other stages' configs.
"""

from __future__ import annotations

import os
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Descriptor groups accepted by ``descriptors=`` (``--descriptors``); see :mod:`gdo.descriptors.registry`.
DESCRIPTOR_GROUPS = ("fields", "motion", "embeddings", "cluster", "dedup")
#: Items per shard per stage (media items for ``media``/``visual_hf``, candidates for ``text``/``model``).
DEFAULT_SHARD_SIZES = {"media": 32, "text": 2048, "model": 128, "visual_hf": 256}
ENGINES = ("local", "ray")


def split_groups(v) -> tuple[str, ...] | None:
    """Descriptor groups given as ``"a, b"`` or a sequence -> ``("a", "b")``; None or empty -> None."""
    if v is None:
        return None
    if isinstance(v, str):
        v = v.split(",")
    return tuple(str(g).strip() for g in v if g and str(g).strip()) or None


class ProfileConfig(BaseModel):
    """Options of the profile stage (frozen; invalid values raise ``pydantic.ValidationError``,
    a ``ValueError``).

    Attributes:
        descriptors: groups among :data:`DESCRIPTOR_GROUPS`; None = all (normalised to the tuple).
        mode: "default" or "paper" (docs/METHOD.md, modes).
        frames: T, frames a video is sampled to (GDO_METHOD.md 2), >= 1.
        k: clusters (None: :func:`gdo.descriptors.cluster.default_k`), >= 1.
        seed: seed of clustering and the model stage.
        model: local VLM folder (model descriptors run only with it).
        model_frames: frames per video the model sees (None: ``frames``).
        model_batch_size: candidates per model forward pass (per actor on Ray).
        device: model device, "auto" | "cpu" | "cuda" | "cuda:N".
        trust_remote_code: allow a model's own code (explicit opt-in).
        visual_encoder: local CLIP/SigLIP folder replacing the weight-free visual feature.
        text_encoder: "minilm" | "hashing" | a local sentence-transformers folder.
        shard_sizes: per-stage overrides of :data:`DEFAULT_SHARD_SIZES`.
        workers: local engine: processes decoding media; Ray engine: media tasks in flight
            (output identical for any value).
        engine: "local" or "ray" (output identical).
        address: Ray cluster address ("auto", "ray://host:10001", ...); None starts a local Ray.
        devices: GPUs for model actors on the Ray engine (one actor per GPU); None = all visible.
        progress: tqdm bars.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    descriptors: Optional[tuple[str, ...]] = None
    mode: str = "default"
    frames: int = Field(32, ge=1)
    k: Optional[int] = Field(None, ge=1)
    seed: int = 42
    model: Optional[str] = None
    model_frames: Optional[int] = Field(None, ge=1)
    model_batch_size: int = Field(8, ge=1)
    device: str = "auto"
    trust_remote_code: bool = False
    visual_encoder: Optional[str] = None
    text_encoder: str = "minilm"
    shard_sizes: Optional[dict[str, int]] = None
    workers: int = Field(1, ge=1)
    engine: str = "local"
    address: Optional[str] = None
    devices: Optional[tuple[int, ...]] = None
    progress: bool = False

    @field_validator("model", "visual_encoder", mode="before")
    @classmethod
    def _path_str(cls, v):
        return None if v is None else os.fspath(v)

    @field_validator("text_encoder", mode="before")
    @classmethod
    def _enc_str(cls, v):
        return os.fspath(v)

    @field_validator("mode")
    @classmethod
    def _mode(cls, v: str) -> str:
        if v not in ("default", "paper"):
            raise ValueError(f"mode must be 'default' or 'paper', not {v!r}")
        return v

    @field_validator("engine")
    @classmethod
    def _engine(cls, v: str) -> str:
        if v not in ENGINES:
            raise ValueError(f"engine must be one of {list(ENGINES)}, not {v!r}")
        return v

    @field_validator("descriptors", mode="before")
    @classmethod
    def _groups(cls, v):
        groups = split_groups(v)
        if groups is None:
            return None
        bad = [g for g in groups if g not in DESCRIPTOR_GROUPS]
        if bad:
            raise ValueError(f"unknown descriptor group(s) {bad}; choose from {list(DESCRIPTOR_GROUPS)}")
        return groups

    @field_validator("shard_sizes")
    @classmethod
    def _sizes(cls, v):
        if v is None:
            return None
        for key, size in v.items():
            if key not in DEFAULT_SHARD_SIZES:
                raise ValueError(f"unknown shard stage {key!r}; choose from {list(DEFAULT_SHARD_SIZES)}")
            if int(size) < 1:
                raise ValueError(f"shard size must be >= 1, got {size} for {key!r}")
        return {k: int(s) for k, s in v.items()}

    @model_validator(mode="after")
    def _devices(self):
        if self.devices is not None and self.engine != "ray":
            raise ValueError("devices (--devices) needs engine='ray' (one model actor per GPU)")
        return self

    @property
    def groups(self) -> list[str]:
        """The descriptor groups to run, in :data:`DESCRIPTOR_GROUPS` order when None was given."""
        return list(DESCRIPTOR_GROUPS) if self.descriptors is None else list(self.descriptors)

    @property
    def sizes(self) -> dict[str, int]:
        """Shard sizes per stage (defaults merged with overrides)."""
        return {**DEFAULT_SHARD_SIZES, **(self.shard_sizes or {})}
