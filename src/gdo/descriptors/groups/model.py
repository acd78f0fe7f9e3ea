"""The ``model`` stage: VLM descriptors per candidate (:func:`gdo.models.hf.compute_model_descriptors`:
loss_video, loss_blind, vds, ppl, sc, tnc_judge, model_error; GDO_METHOD.md 3.1-3.4), and their
columns in descriptors.parquet (null without a model)."""

from __future__ import annotations

import pyarrow as pa

from gdo.descriptors.registry import Descriptor, Stage, register
from gdo.utils.hashing import stable_hash

MODEL_VERSION = 1
MODEL_COLUMNS = ["loss_video", "loss_blind", "vds", "ppl", "sc", "tnc_judge", "model_error"]
SCHEMA = pa.schema([("uid", pa.string())] + [(c, pa.string() if c == "model_error" else pa.float64())
                                              for c in MODEL_COLUMNS])
#: The shard table also keeps the pooled hidden state (``model_emb``, issue 15): it goes to the
#: embedding store (embeddings.parquet), not to descriptors.parquet. Shards from before it was
#: added lack the column; their rows read as null (model space unavailable for them).
SHARD_SCHEMA = SCHEMA.append(pa.field("model_emb", pa.list_(pa.float32())))


def _keys(ctx, idx):
    u, q, a = ctx.values("uid", idx), ctx.values("question", idx), ctx.values("answer", idx)
    return [u[j] + "\x1f" + stable_hash(q[j] or "", a[j] or "", *ctx.media_of(i)) for j, i in enumerate(idx)]


def _setup(args: dict):
    return dict(args)


def _compute(state, sub: pa.Table) -> pa.Table:
    from gdo.models.hf import compute_model_descriptors

    res = compute_model_descriptors(sub, state["model"], batch_size=state["batch_size"], device=state["device"],
                                    seed=state["seed"], frames=state["frames"],
                                    trust_remote_code=state["trust_remote_code"], progress=False,
                                    mode=state.get("mode", "default"))
    out = pa.table({f.name: (res.column(f.name).cast(f.type) if f.name in res.column_names
                             else pa.nulls(res.num_rows, f.type)) for f in SHARD_SCHEMA}, schema=SHARD_SCHEMA)
    probe = (res.schema.metadata or {}).get(b"gdo.model_probe")
    # the model's fingerprint (gdo.models.hf.probe_item) rides along as shard metadata
    return out.replace_schema_metadata({"gdo.model_probe": probe}) if probe and probe != b"null" else out


def model_probe_of(ctx) -> list[float] | None:
    """The model fingerprint recorded by the model stage's shards (None: none recorded)."""
    import json

    mt = ctx.stage_tables.get("model")
    meta = (mt.schema.metadata or {}) if mt is not None else {}
    raw = meta.get(b"gdo.model_probe")
    return json.loads(raw) if raw else None


def model_embeddings(ctx):
    """The pooled hidden states of the model stage in candidate order: (float32 (n, d), mask bool
    (n,)), or None when the model stage did not run or stored none."""
    import numpy as np

    mt = ctx.stage_tables.get("model")
    if mt is None or "model_emb" not in mt.column_names:
        return None
    col = mt.column("model_emb").combine_chunks()
    valid = ~np.asarray(col.is_null().to_numpy(zero_copy_only=False), bool)
    if not valid.any():
        return None
    flat = np.asarray(col.filter(pa.array(valid)).flatten().to_numpy(zero_copy_only=False), np.float32)
    d = flat.size // int(valid.sum())
    flat = flat.reshape(-1, d)
    row_of = np.cumsum(valid) - 1  # shard-table row -> row of ``flat`` (where valid)
    emb = np.zeros((ctx.n, d), np.float32)
    mask = np.zeros(ctx.n, bool)
    for i, r in enumerate(_rows_of(ctx, mt)):
        if r is not None and valid[r]:
            emb[i] = flat[row_of[r]]
            mask[i] = True
    return emb, mask


def _rows_of(ctx, mt: pa.Table) -> list:
    """The model-stage table's row of each candidate (pool order); None where it has none."""
    mi = {u: i for i, u in enumerate(mt.column("uid").to_pylist())}
    return [mi.get(u) for u in ctx.column("uid").to_pylist()]

register(Stage(
    name="model", unit="candidates", uses_model=True, enabled=lambda ctx: ctx.cfg.model is not None,
    store_config=lambda ctx: {"version": MODEL_VERSION, "model": ctx.model_id, "frames": ctx.model_frames,
                              "seed": ctx.cfg.seed,
                              # paper mode's model descriptors differ (issue 12 item 8): own shards
                              **({"mode": "paper"} if ctx.cfg.mode == "paper" else {})},
    keys=_keys, payload=lambda ctx, idx: ctx.cands.take(pa.array(idx, pa.int64())),
    setup_args=lambda ctx: {"model": ctx.cfg.model, "batch_size": ctx.cfg.model_batch_size,
                            "device": ctx.cfg.device, "seed": ctx.cfg.seed, "frames": ctx.model_frames,
                            "trust_remote_code": ctx.cfg.trust_remote_code, "mode": ctx.cfg.mode},
    setup=_setup, compute=_compute, size_key="model", wants_gpu=True))


def _columns(ctx) -> dict:
    mt = ctx.stage_tables["model"]
    pos = _rows_of(ctx, mt)
    out = {}
    for c in MODEL_COLUMNS:
        vals = mt.column(c).to_pylist() if c in mt.column_names else [None] * mt.num_rows
        out[c] = [vals[p] if p is not None else None for p in pos]
    out["model_error"] = [e if e is not None else (None if p is not None else "model produced no row")
                          for e, p in zip(out["model_error"], pos)]
    return out


register(Descriptor(name="model", columns={c: f.type for c, f in zip(MODEL_COLUMNS, list(SCHEMA)[1:])},
                    needs=("model",), compute=_columns, enabled=lambda ctx: "model" in ctx.stage_tables))
