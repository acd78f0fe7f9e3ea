"""Near-duplicates: perceptual hashes per media item (shared frames) and, over the pool,
``dup_group`` / ``dup_size`` / ``media_group`` (:mod:`gdo.descriptors.dedup`)."""

from __future__ import annotations

import pyarrow as pa

from gdo.descriptors.registry import Descriptor, MediaDescriptor, register


def _compute(kind: str, frames: list) -> dict:
    from gdo.descriptors.dedup import media_hashes

    return {"phash": media_hashes(kind, frames)}


register(MediaDescriptor(name="hashes", columns=(("phash", pa.list_(pa.uint64())),), compute=_compute,
                         default=lambda: {"phash": []}))


def _columns(ctx) -> dict:
    from gdo.descriptors.dedup import dup_groups

    mt = ctx.media_tab
    if mt is not None:
        ik = mt.column("media_key").to_pylist()
        ikind = mt.column("kind").to_pylist()
        ih = [[int(h) for h in hs] for hs in mt.column("phash").to_pylist()]
    else:
        ik, ikind, ih = [], [], []
    g, sz, mg = dup_groups(ctx.uids, [k if k in ctx.m_index else None for k in ctx.mkeys], ctx.questions,
                           ctx.answers, ik, ikind, ih)
    return {"dup_group": g.tolist(), "dup_size": sz.tolist(), "media_group": mg.tolist()}


register(Descriptor(name="dedup", columns={"dup_group": pa.string(), "dup_size": pa.int64(),
                                           "media_group": pa.string()},
                    needs=("media",), compute=_columns))
