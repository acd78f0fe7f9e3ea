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
    import numpy as np

    from gdo.descriptors.dedup import dup_group_columns

    mt = ctx.media_tab
    if mt is not None:
        ikind = mt.column("kind").to_pylist()
        ih = [[int(h) for h in hs] for hs in mt.column("phash").to_pylist()]
    else:
        ikind, ih = [], []
    # a candidate's media group is its row in the media table (-1: none there), so item i is group i
    g, sz, mg = dup_group_columns(ctx.column("uid"), ctx.cand_item, ctx.column("question"), ctx.column("answer"),
                                  np.arange(len(ikind)), ikind, ih)
    return {"dup_group": g, "dup_size": sz, "media_group": mg}


register(Descriptor(name="dedup", columns={"dup_group": pa.string(), "dup_size": pa.int64(),
                                           "media_group": pa.string()},
                    needs=("media",), compute=_columns))
