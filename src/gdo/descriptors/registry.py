"""The descriptor registry: what each descriptor computes, what it needs, and where its columns go.

Three kinds of entries, each a frozen dataclass holding plain top-level functions (so an
executor can ship them to a worker process or a Ray actor):

* :class:`MediaDescriptor` -- computed once per distinct media item from frames decoded once and
  shared by every media descriptor (motion, the weight-free visual feature, perceptual hashes).
  Its values become columns of the ``media`` stage's shard table.
* :class:`Stage` -- a sharded, resumable unit of work over media items or candidates (``media``,
  ``visual_hf``, ``text``, ``model``). ``setup`` loads what the stage needs once per process /
  actor (an encoder, the VLM); ``compute`` turns one shard's payload into an Arrow table.
  Executors (:mod:`gdo.engine.local`, :mod:`gdo.engine.ray`) own sharding, retries, completion
  markers and parallelism; stages stay pure.
* :class:`Descriptor` -- a pool-level group that fills columns of ``descriptors.parquet`` from the
  stage results (:class:`gdo.descriptors.profile.ProfileContext`), e.g. stratum fields, dup
  groups, clusters.

Adding a descriptor is one new module in :mod:`gdo.descriptors.groups` that calls
:func:`register` plus one import line in ``gdo/descriptors/groups/__init__.py`` (docs/DESIGN.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import pyarrow as pa


@dataclass(frozen=True)
class MediaDescriptor:
    """A per-media-item descriptor computed from shared decoded frames.

    Attributes:
        name: registry name.
        columns: ``(column, arrow type)`` pairs it adds to the media shard table.
        compute: ``(media_kind, frames) -> {column: value}``; frames are RGB uint8 ``(H, W, 3)``
            arrays as returned by :func:`gdo.descriptors.motion.load_motion_frames` (8 for a video).
        default: ``() -> {column: value}`` used when decoding or ``compute`` fails.
    """

    name: str
    columns: tuple[tuple[str, pa.DataType], ...]
    compute: Callable[[str, list], dict]
    default: Callable[[], dict]


@dataclass(frozen=True)
class Stage:
    """A sharded, resumable stage (see module doc).

    Attributes:
        name: stage name; also the shard-store folder under ``OUT/.gdo/shards/``.
        unit: "media" (one key per distinct media item) or "candidates".
        uses_model: True when ``setup`` loads a model: the local engine runs it in the driver
            process, the Ray engine in an actor pool (one load per actor).
        enabled: ``ctx -> bool``.
        store_config: ``ctx -> dict`` hashed into the shard folder name (change it and shards are
            recomputed).
        keys: ``(ctx, unit indices) -> list[str]``: one key per unit; shard names hash them.
        payload: ``(ctx, unit indices) -> picklable`` input of one shard.
        setup_args: ``ctx -> dict`` (JSON-able) passed to ``setup``.
        setup: ``setup_args -> state`` (called once per process / actor and cached).
        compute: ``(state, payload) -> pa.Table``.
        size_key: key of the shard size in ``ProfileConfig.sizes``.
        wants_gpu: the model runs on a GPU when there is one (Ray: ``num_gpus=1`` per actor).
    """

    name: str
    unit: str
    uses_model: bool
    enabled: Callable[[Any], bool]
    store_config: Callable[[Any], dict]
    keys: Callable[[Any, list], list]
    payload: Callable[[Any, list], Any]
    setup_args: Callable[[Any], dict]
    setup: Callable[[dict], Any]
    compute: Callable[[Any, Any], pa.Table]
    size_key: str = ""
    wants_gpu: bool = False


@dataclass(frozen=True)
class Descriptor:
    """A pool-level descriptor group filling columns of descriptors.parquet.

    Attributes:
        name: group name (``--descriptors``), or a name outside
            :data:`gdo.descriptors.config.DESCRIPTOR_GROUPS` for groups that always run when
            ``enabled`` says so (the base columns, the model columns).
        columns: ``{column: arrow type}`` it writes; columns not in ``gdo.schema.DESCRIPTOR_COLUMNS``
            or ``profile.EXTRA_COLUMNS`` are appended to descriptors.parquet in registration order.
        needs: stage names whose results it reads (informational; ``ctx`` exposes them).
        compute: ``ctx -> {column: list of n values}``.
        enabled: ``ctx -> bool`` (default: the group was requested).
    """

    name: str
    columns: dict
    needs: tuple[str, ...]
    compute: Callable[[Any], dict]
    enabled: Callable[[Any], bool] | None = None


@dataclass
class Registry:
    """Registered media descriptors, stages and descriptor groups, in registration order."""

    media: list[MediaDescriptor] = field(default_factory=list)
    stages: list[Stage] = field(default_factory=list)
    descriptors: list[Descriptor] = field(default_factory=list)

    def add(self, entry: MediaDescriptor | Stage | Descriptor) -> None:
        """Register ``entry``.

        Raises:
            ValueError: an entry of the same kind and name is already registered.
        """
        bucket = {MediaDescriptor: self.media, Stage: self.stages, Descriptor: self.descriptors}[type(entry)]
        if any(e.name == entry.name for e in bucket):
            raise ValueError(f"{type(entry).__name__} {entry.name!r} is already registered")
        bucket.append(entry)

    def stage(self, name: str) -> Stage:
        """The stage called ``name`` (KeyError when absent)."""
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(name)


REGISTRY = Registry()


def register(entry):
    """Add ``entry`` (a :class:`MediaDescriptor`, :class:`Stage` or :class:`Descriptor`) to
    :data:`REGISTRY` and return it."""
    REGISTRY.add(entry)
    return entry


def registry() -> Registry:
    """The registry with every built-in group imported (:mod:`gdo.descriptors.groups`)."""
    import gdo.descriptors.groups  # noqa: F401  (registers on import)

    return REGISTRY
