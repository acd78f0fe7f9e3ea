"""The ``text`` stage: L2-normalised embeddings of question + answer
(:func:`gdo.descriptors.embeddings.text_embeddings`), used by clustering and embeddings.parquet.

Batches are fixed (64 texts, in pool order within a shard): a sentence encoder's padding depends
on the batch, so fixed batches keep the vectors identical between runs and engines."""

from __future__ import annotations

import pyarrow as pa

from gdo.descriptors.registry import Stage, register
from gdo.utils.hashing import stable_hash

TEXT_VERSION = 1
TEXT_BATCH = 64


def _setup(args: dict):
    return dict(args)


def _compute(state, payload) -> pa.Table:
    from gdo.descriptors.embeddings import text_embeddings
    from gdo.descriptors.groups._arrow import fixed_list

    uids, texts = payload
    emb = text_embeddings(texts, encoder=state["encoder"], batch_size=TEXT_BATCH)
    return pa.table({"uid": pa.array(uids, pa.string()), "text_emb": fixed_list(emb)})


register(Stage(
    name="text", unit="candidates", uses_model=True, enabled=lambda ctx: ctx.need_text and ctx.n > 0,
    store_config=lambda ctx: {"version": TEXT_VERSION, "encoder": ctx.text_encoder_id, "batch_size": TEXT_BATCH},
    keys=lambda ctx, idx: [u + "\x1f" + stable_hash(t) for u, t in zip(ctx.values("uid", idx), ctx.texts_of(idx))],
    payload=lambda ctx, idx: (ctx.values("uid", idx), ctx.texts_of(idx)),
    setup_args=lambda ctx: {"encoder": ctx.cfg.text_encoder},
    setup=_setup, compute=_compute, size_key="text"))
