"""Clusters: cluster_id, cluster_rep, cluster_hard (:mod:`gdo.descriptors.cluster`) over the
concatenated text embedding, visual feature and scalar descriptors (tnc, amm, frame diversity,
log PPL and VDS when the model ran)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from gdo.descriptors.registry import Descriptor, register


def _columns(ctx) -> dict:
    from gdo.descriptors.cluster import build_features, cluster

    if not ctx.n:
        return {}
    mv = ctx.model_vals
    scal = [ctx.tnc, ctx.amm, ctx.div]
    if mv and np.isfinite(mv.get("ppl", np.array([np.nan]))).any():
        scal.append(np.log(np.clip(mv["ppl"], 1e-12, None)))
    if mv and np.isfinite(mv.get("vds", np.array([np.nan]))).any():
        scal.append(mv["vds"])
    feats = build_features([ctx.text_emb, ctx.cand_visual, np.stack(scal, axis=1)])
    cid, rep, hard, info = cluster(feats, k=ctx.cfg.k, seed=ctx.cfg.seed, mode=ctx.cfg.mode)
    ctx.info["cluster"] = info
    return {"cluster_id": cid.tolist(), "cluster_rep": rep.tolist(), "cluster_hard": hard.tolist()}


register(Descriptor(name="cluster", columns={"cluster_id": pa.int64(), "cluster_rep": pa.float64(),
                                             "cluster_hard": pa.float64()},
                    needs=("text", "media", "visual_hf", "model"), compute=_columns))
