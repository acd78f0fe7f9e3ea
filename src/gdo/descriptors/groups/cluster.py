"""Clusters: cluster_id, cluster_rep, cluster_hard (:mod:`gdo.descriptors.cluster`) over the
concatenated text embedding, visual feature and scalar descriptors (tnc, amm, frame diversity,
log PPL and VDS when the model ran)."""

from __future__ import annotations

import pyarrow as pa

from gdo.descriptors.registry import Descriptor, register


def _columns(ctx) -> dict:
    from gdo.descriptors.cluster import cluster_descriptors

    if not ctx.n:
        return {}
    mv = ctx.model_vals or {}
    # the visual block as a gather of per-item features: the (n, D) matrix is never built
    cid, rep, hard, info = cluster_descriptors(ctx.text_emb, ctx.visual_rows, ctx.tnc, ctx.amm, ctx.div,
                                               mv.get("ppl"), mv.get("vds"), k=ctx.cfg.k, seed=ctx.cfg.seed,
                                               mode=ctx.cfg.mode)
    ctx.info["cluster"] = info
    return {"cluster_id": cid, "cluster_rep": rep, "cluster_hard": hard}


register(Descriptor(name="cluster", columns={"cluster_id": pa.int64(), "cluster_rep": pa.float64(),
                                             "cluster_hard": pa.float64()},
                    needs=("text", "media", "visual_hf", "model"), compute=_columns))
