"""The ``media`` stage (each distinct media item decoded once, frames shared by every registered
:class:`~gdo.descriptors.registry.MediaDescriptor`) and the base columns of descriptors.parquet
(uid, keys, frame counts, media_error)."""

from __future__ import annotations

import pyarrow as pa

from gdo.descriptors.registry import Descriptor, Stage, register
from gdo.utils.hashing import stable_hash

MEDIA_VERSION = 3  # 3: shard layout media_key, kind, native, decoded, flags, <media descriptors>, error
_MEDIA_GROUPS = {"motion", "dedup", "cluster", "embeddings"}


def _media_enabled(ctx) -> bool:
    return bool(_MEDIA_GROUPS & set(ctx.groups)) and bool(ctx.item_list)


def _media_keys(ctx, idx):
    return [ctx.item_list[i][0] + "\x1f" + "\x1e".join(ctx.item_list[i][2]) for i in idx]


def _media_payload(ctx, idx):
    return [ctx.item_list[i] for i in idx]


def _media_setup(args: dict):
    from gdo.descriptors.registry import registry

    return {"frames": args["frames"], "media": list(registry().media)}


def _media_compute(state, items) -> pa.Table:
    """Decode each item once and run every media descriptor on the shared frames.

    A failure (unreadable media, a descriptor raising) is recorded in ``error``; descriptors that
    did not run get their defaults, so the candidate keeps null motion rather than being dropped.
    """
    from gdo.descriptors.motion import load_motion_media
    from gdo.engine.local import init_worker

    init_worker()
    mds = state["media"]
    cols: dict[str, list] = {"media_key": [], "kind": [], "native": [], "decoded": [], "flags": []}
    types: dict[str, pa.DataType] = {"media_key": pa.string(), "kind": pa.string(), "native": pa.int64(),
                                     "decoded": pa.int64(), "flags": pa.string()}
    for md in mds:
        for c, t in md.columns:
            cols[c] = []
            types[c] = t
    cols["error"] = []
    types["error"] = pa.string()
    for key, kind, media in items:
        vals: dict = {}
        for md in mds:
            vals.update(md.default())
        native = None
        err = None
        facts: dict = {"decoded_frames": None, "flags": ()}
        try:
            fr, native, facts = load_motion_media(kind, media, state["frames"])
            for md in mds:
                vals.update(md.compute(kind, fr))
            del fr
        except Exception as e:  # record, never drop
            err = f"{type(e).__name__}: {e}"
        cols["media_key"].append(key)
        cols["kind"].append(kind)
        cols["native"].append(native)
        cols["decoded"].append(facts["decoded_frames"])
        cols["flags"].append(",".join(facts["flags"]) or None)
        for c in vals:
            cols[c].append(vals[c])
        cols["error"].append(err)
    arrays = {}
    for c, t in types.items():
        if pa.types.is_fixed_size_list(t):
            from gdo.descriptors.groups._arrow import fixed_list
            import numpy as np

            mat = np.stack(cols[c]) if cols[c] else np.zeros((0, t.list_size), np.float32)
            arrays[c] = fixed_list(mat)
        else:
            arrays[c] = pa.array(cols[c], t)
    return pa.table(arrays)


MEDIA = register(Stage(
    name="media", unit="media", uses_model=False, enabled=_media_enabled,
    store_config=lambda ctx: {"version": MEDIA_VERSION, "frames": ctx.cfg.frames},
    keys=_media_keys, payload=_media_payload,
    setup_args=lambda ctx: {"frames": ctx.cfg.frames},
    setup=_media_setup, compute=_media_compute, size_key="media"))


def _base_compute(ctx) -> dict:
    c = ctx.column
    return {
        "uid": c("uid"), "bucket": c("bucket"), "video_key": c("video_key"), "media_key": ctx.mkey_arr,
        "pool_pos": c("pool_pos"), "duration_s": c("duration_s"),
        "n_frames": ctx.n_frames, "native_frames": ctx.native, "media_error": ctx.media_error,
        "decoded_frames": ctx.decoded_frames, "media_flags": ctx.media_flags,
    }


register(Descriptor(
    name="base", columns={}, needs=("media",), compute=_base_compute, enabled=lambda ctx: True))


def media_key_of(media_kind, media, video_key):
    """Key of a candidate's media item: video_key for videos/frame lists, a hash of the paths for
    images, None without media."""
    if not media or media_kind in (None, "none"):
        return None
    if media_kind in ("video", "frames"):
        return video_key or "v::" + stable_hash(*media)
    return "img::" + stable_hash(*media)
