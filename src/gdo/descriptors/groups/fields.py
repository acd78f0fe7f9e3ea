"""Stratum fields and TNC (:mod:`gdo.descriptors.fields`; GDO_METHOD.md 3.2 and 4): tnc,
tnc_lexical, question_form, q/a length buckets, duration_bucket, temporal_category, source_group."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from gdo.descriptors import fields as F
from gdo.descriptors.registry import Descriptor, register
from gdo.schema import IMAGE_QA


def _columns(ctx) -> dict:
    mode = ctx.cfg.mode
    q = ctx.questions
    tt = ctx.tnc_text
    out = {"tnc_lexical": ctx.lex.tolist(), "tnc": ctx.tnc.tolist(),
           "tnc_text": tt.tolist() if tt is not None else [None] * ctx.n,
           "question_form": F.question_form(q, mode=mode).tolist(),
           "q_len_bucket": F.q_len_bucket(q).tolist(), "a_len_bucket": F.a_len_bucket(ctx.answers).tolist()}
    nf = np.array([np.nan if v is None else v for v in ctx.n_frames], dtype=np.float64)
    if mode == "paper":
        out["duration_bucket"] = F.duration_bucket(nf).tolist()
    else:
        nat = np.array([np.nan if v is None else v for v in ctx.native], dtype=np.float64)
        nat = np.where(np.isnan(nat), nf, nat)
        db = F.duration_bucket(nat)
        db[np.asarray(ctx.buckets, dtype=object) == IMAGE_QA] = "image"
        out["duration_bucket"] = db.tolist()
    judge = ctx.judge
    out["temporal_category"] = F.temporal_category(
        ctx.buckets, q, tnc_judge=judge if (mode == "default" and judge is not None) else None).tolist()
    out["source_group"] = F.source_group(ctx.cands.column("data_source")).tolist()
    return out


register(Descriptor(
    name="fields",
    columns={"tnc_lexical": pa.float64(), "tnc_text": pa.float64(), "tnc": pa.float64(), "question_form": pa.string(),
             "q_len_bucket": pa.string(), "a_len_bucket": pa.string(), "duration_bucket": pa.string(),
             "temporal_category": pa.string(), "source_group": pa.string()},
    needs=("media", "model"), compute=_columns))
