"""Visual features: the weight-free 160-d feature per media item (shared frames,
:func:`gdo.descriptors.embeddings.handcrafted_visual`), and the optional ``visual_hf`` stage
(a local CLIP/SigLIP folder, ``visual_encoder=``) that replaces it for clustering."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from gdo.descriptors.registry import MediaDescriptor, Stage, register

VISUAL_DIM = 160


def _compute(kind: str, frames: list) -> dict:
    from gdo.descriptors.embeddings import handcrafted_visual

    return {"visual": handcrafted_visual(frames)}


register(MediaDescriptor(
    name="visual", columns=(("visual", pa.list_(pa.float32(), VISUAL_DIM)),),
    compute=_compute, default=lambda: {"visual": np.zeros(VISUAL_DIM, np.float32)}))


def _setup(args: dict):
    from gdo.descriptors.embeddings import HFVisualEncoder

    return {"enc": HFVisualEncoder(args["path"], device=args["device"], trust_remote_code=args["trust_remote_code"]),
            "frames": args["frames"]}


def _compute_hf(state, items) -> pa.Table:
    from gdo.descriptors.dedup import HASH_FRAME_POS
    from gdo.descriptors.groups._arrow import fixed_list
    from gdo.descriptors.motion import load_motion_frames

    frs = []
    for key, kind, media in items:
        try:
            fr, _ = load_motion_frames(kind, media, state["frames"])
        except Exception:
            fr = []
        if kind in ("video", "frames") and len(fr) >= 8:
            fr = [fr[j] for j in HASH_FRAME_POS]
        frs.append(fr[:4])
    emb = state["enc"].encode(frs)
    return pa.table({"media_key": pa.array([it[0] for it in items], pa.string()), "emb": fixed_list(emb)})


register(Stage(
    name="visual_hf", unit="media", uses_model=True,
    enabled=lambda ctx: ctx.cfg.visual_encoder is not None and ctx.need_text and bool(ctx.item_list),
    store_config=lambda ctx: {"encoder": ctx.visual_encoder_id, "frames": ctx.cfg.frames},
    keys=lambda ctx, idx: [ctx.item_list[i][0] for i in idx],
    payload=lambda ctx, idx: [ctx.item_list[i] for i in idx],
    setup_args=lambda ctx: {"path": ctx.cfg.visual_encoder, "device": ctx.cfg.device,
                            "trust_remote_code": ctx.cfg.trust_remote_code, "frames": ctx.cfg.frames},
    setup=_setup, compute=_compute_hf, size_key="visual_hf", wants_gpu=True))
