"""Stratum fields and TNC (:mod:`gdo.descriptors.fields`; GDO_METHOD.md 3.2 and 4): tnc,
tnc_lexical, question_form, q/a length buckets, duration_bucket, temporal_category, source_group."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gdo.descriptors import fields as F
from gdo.descriptors.registry import Descriptor, register
from gdo.schema import IMAGE_QA


def _columns(ctx) -> dict:
    # Arrow columns in, numpy arrays out (profile turns each into Arrow at once): no Python list
    mode = ctx.cfg.mode
    q = ctx.column("question")
    buckets = ctx.column("bucket")
    tt = ctx.tnc_text
    out = {"tnc_lexical": ctx.lex, "tnc": ctx.tnc,
           "tnc_text": tt if tt is not None else pa.nulls(ctx.n, pa.float64()),
           "question_form": F.question_form(q, mode=mode),
           "q_len_bucket": F.q_len_bucket(q), "a_len_bucket": F.a_len_bucket(ctx.column("answer"))}
    nf = _floats(ctx.n_frames)
    if mode == "paper":
        out["duration_bucket"] = F.duration_bucket(nf)
    else:
        nat = _floats(ctx.native)
        nat = np.where(np.isnan(nat), nf, nat)
        db = F.duration_bucket(nat)
        db[np.asarray(pc.fill_null(pc.equal(buckets, IMAGE_QA), False).to_numpy(zero_copy_only=False), bool)] = "image"
        out["duration_bucket"] = db
    judge = ctx.judge
    out["temporal_category"] = F.temporal_category(
        buckets, q, tnc_judge=judge if (mode == "default" and judge is not None) else None)
    out["source_group"] = F.source_group(ctx.column("data_source"))
    return out


def _floats(arr) -> np.ndarray:
    """float64 (n,) of an Arrow integer column, NaN where null."""
    return np.asarray(pc.fill_null(pc.cast(arr, pa.float64()), np.nan).to_numpy(zero_copy_only=False), np.float64)


register(Descriptor(
    name="fields",
    columns={"tnc_lexical": pa.float64(), "tnc_text": pa.float64(), "tnc": pa.float64(), "question_form": pa.string(),
             "q_len_bucket": pa.string(), "a_len_bucket": pa.string(), "duration_bucket": pa.string(),
             "temporal_category": pa.string(), "source_group": pa.string()},
    needs=("media", "model"), compute=_columns))
