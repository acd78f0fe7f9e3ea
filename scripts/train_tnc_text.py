#!/usr/bin/env python
"""Train the model-free TNC classifier (gdo.descriptors.tnc_text) and print its F1 figures.

Data: NExT-QA val (doc-doc/NExT-QA, MIT; ../shared/data/real/doc-doc__NExT-QA/dataset/nextqa/val.csv),
4,996 questions typed CW/CH (causal), TN/TC/TP (temporal), DC/DL/DO (descriptive).
Label: temporal (TN/TC/TP) = 1, else 0. Features: the all-MiniLM-L6-v2 embedding (the one profile
stores in embeddings.parquet) of the question alone AND of ``question + "\\n" + correct option`` (both
rows per question, so the classifier serves question-only and question+answer embeddings).
Model: scikit-learn LogisticRegression (C=16, class_weight="balanced").
Evaluation: 5-fold cross-validation grouped by video (no video in both train and test folds),
F1 of the temporal class on question+answer embeddings; then F1 on the other labelled set
(benchmarks/data/tnc_other_questions.jsonl: 122 questions written and labelled by the gdo developer
plus LLaVA's 90 qa90 image questions labelled static), against the lexical rule on both sets.

Writes src/gdo/descriptors/data/tnc_text_minilm.npz (coef float32 (384,), intercept, threshold,
provenance and licence strings). Prints one JSON line of figures. Run time ~2 min on one CPU.

    PYTHONPATH=src python scripts/train_tnc_text.py [--nextqa PATH] [--out PATH]
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CSV = ROOT.parent / "shared/data/real/doc-doc__NExT-QA/dataset/nextqa/val.csv"
OTHER = ROOT / "benchmarks/data/tnc_other_questions.jsonl"
OUT = ROOT / "src/gdo/descriptors/data/tnc_text_minilm.npz"
C = 16.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nextqa", default=str(DEFAULT_CSV))
    ap.add_argument("--out", default=str(OUT))
    a = ap.parse_args()
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import GroupKFold

    from gdo.descriptors.embeddings import minilm_text_embeddings, text_inputs
    from gdo.descriptors.fields import lexical_tnc

    torch.set_num_threads(1)
    rows = list(csv.DictReader(open(a.nextqa, newline="", encoding="utf-8")))
    q = [r["question"] for r in rows]
    ans = [r["a" + r["answer"]] for r in rows]
    y = np.asarray([r["type"] in ("TN", "TC", "TP") for r in rows], dtype=np.int64)
    vid = np.asarray([r["video"] for r in rows])
    eq = minilm_text_embeddings(q)
    eqa = minilm_text_embeddings(text_inputs(q, ans))
    pred = np.zeros(len(y), dtype=np.int64)
    for tr, te in GroupKFold(n_splits=5).split(eqa, y, vid):
        m = LogisticRegression(C=C, max_iter=3000, class_weight="balanced")
        m.fit(np.vstack([eq[tr], eqa[tr]]), np.r_[y[tr], y[tr]])
        pred[te] = m.predict(eqa[te])
    cv_f1 = float(f1_score(y, pred))
    lex_f1 = float(f1_score(y, (lexical_tnc(q) > 0.5).astype(int)))
    m = LogisticRegression(C=C, max_iter=3000, class_weight="balanced").fit(np.vstack([eq, eqa]), np.r_[y, y])
    other = [json.loads(x) for x in open(OTHER, encoding="utf-8") if x.strip()]
    oq = [o["question"] for o in other]
    oy = np.asarray([o["temporal"] for o in other], dtype=np.int64)
    oemb = minilm_text_embeddings(text_inputs(oq, [""] * len(oq)))
    other_f1 = float(f1_score(oy, m.predict(oemb)))
    other_lex = float(f1_score(oy, (lexical_tnc(oq) > 0.5).astype(int)))
    np.savez(a.out, coef=m.coef_[0].astype(np.float32), intercept=np.float32(m.intercept_[0]),
             threshold=np.float32(0.5),
             provenance=np.str_(
                 "LogisticRegression(C=16, balanced) on all-MiniLM-L6-v2 embeddings of NExT-QA val questions "
                 "(doc-doc/NExT-QA commit 6b92588, dataset/nextqa/val.csv, 4,996 questions; temporal = TN/TC/TP); "
                 "trained by scripts/train_tnc_text.py"),
             licence=np.str_("training data NExT-QA: MIT (Copyright (c) 2021 Junbin Xiao); weights: same licence as gdo"),
             figures=np.str_(json.dumps({"nextqa_cv_f1": round(cv_f1, 4), "other_f1": round(other_f1, 4)})))
    print(json.dumps({"nextqa_n": len(y), "nextqa_temporal": int(y.sum()), "nextqa_cv_f1_grouped5": round(cv_f1, 4),
                      "nextqa_lexical_f1": round(lex_f1, 4), "other_n": len(oy), "other_temporal": int(oy.sum()),
                      "other_f1": round(other_f1, 4), "other_lexical_f1": round(other_lex, 4), "out": a.out}))


if __name__ == "__main__":
    sys.exit(main())
