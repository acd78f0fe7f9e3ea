#!/usr/bin/env python
"""Goal-set selection on NExT-QA's typed questions (issue 15, "done when" 1 and 2).

Pool: NExT-QA val (doc-doc/NExT-QA, MIT; ../shared/data/real/doc-doc__NExT-QA), one LLaVA-Video
style row per question: the question, its correct option as the answer, and a placeholder video
path ``videos/<video id>.mp4`` (not present; `gdo select` never opens media, and the per-video cap
of 8 acts on NExT-QA's real video structure). Types: descriptive (DC/DL/DO), temporal
(TN/TC/TP), causal (CW/CH).

Part 1 (``share``): for each type, 30 questions of that type are the goal set (seeded draw) and
the pool is the other 4,966 questions (disjoint); ``gdo select --preset target --goal-set G
--budget 200`` with the pool's stored text embeddings (all-MiniLM-L6-v2, written once with
:func:`gdo.descriptors.embedding_store.write_embeddings`). Prints per type the share of that type
in the subset and the base rate in the pool (target: share >= 0.7).

Part 2 (``budgets``): pools of 1,000 and 4,966 (all but the goal items; NExT-QA val has 4,996)
and budgets 100, 200, 300 with the temporal goal set: prints requested vs selected and every
constraint with its status.

    PYTHONPATH=src python benchmarks/bench_goal_nextqa.py [--seeds 0,1,2] [--work DIR]

One JSON line per run on stdout. About 2 min on one CPU (mostly embedding 5k texts once).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

HERE = Path(__file__).resolve().parent
CSV = HERE.parent.parent / "shared/data/real/doc-doc__NExT-QA/dataset/nextqa/val.csv"
TYPES = {"descriptive": ("DC", "DL", "DO"), "temporal": ("TN", "TC", "TP"), "causal": ("CW", "CH")}


def type_of(code: str) -> str:
    return next(t for t, codes in TYPES.items() if code in codes)


def load(csv_path: Path) -> list[dict]:
    rows = list(csv.DictReader(open(csv_path, newline="", encoding="utf-8")))
    for i, r in enumerate(rows):
        r["uid_id"] = f"nq{i:05d}"
        r["ans_text"] = r["a" + r["answer"]]
        r["group"] = type_of(r["type"])
    return rows


def write_pool(rows: list[dict], path: Path) -> None:
    with open(path, "wb") as f:
        for r in rows:
            f.write(orjson.dumps({"id": r["uid_id"], "video": f"videos/{r['video']}.mp4", "data_source": "nextqa",
                                  "conversations": [{"from": "human", "value": "<video>\n" + r["question"]},
                                                    {"from": "gpt", "value": r["ans_text"]}]}) + b"\n")


def write_goal(rows: list[dict], path: Path) -> None:
    with open(path, "wb") as f:
        for r in rows:
            f.write(orjson.dumps({"question": r["question"], "answer": r["ans_text"]}) + b"\n")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--csv", default=str(CSV))
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--work", default=None)
    ap.add_argument("--parts", default="share,budgets")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from gdo.descriptors.embedding_store import write_embeddings
    from gdo.descriptors.embeddings import minilm_text_embeddings, text_inputs
    from gdo.pool.ingest import ingest
    from gdo import stages
    from gdo.config import IngestConfig, SelectConfig

    def run_select(pool_files, descriptors, out, *, preset, budget, goal_set, embeddings):
        """Select through gdo's stage layer (as `gdo select` does) into ``out``."""
        cands = stages.load_candidates([str(p) for p in pool_files],
                                       IngestConfig.make(probe_media=False, media_columns=False))
        cfg = SelectConfig.make(preset=preset, budget=budget, goal_set=goal_set, embeddings=embeddings)
        return stages.select_stage(cands, descriptors, out, cfg)

    rows = load(Path(a.csv))
    work = Path(a.work or tempfile.mkdtemp(prefix="gdo_goal_nextqa_"))
    work.mkdir(parents=True, exist_ok=True)
    # one pool file with every question: ingest gives the uids; embeddings computed once
    write_pool(rows, work / "all.jsonl")
    allc = ingest([str(work / "all.jsonl")], probe_media=False).candidates
    uid_of = dict(zip([u.split("::")[1] for u in allc["uid"].to_pylist()], allc["uid"].to_pylist()))
    store = work / "embeddings.parquet"
    if not store.exists():  # "profile once": the store of a previous run in --work is reused
        t0 = time.perf_counter()
        emb = minilm_text_embeddings(text_inputs([r["question"] for r in rows], [r["ans_text"] for r in rows]))
        print(json.dumps({"embedded": len(rows), "seconds": round(time.perf_counter() - t0, 1)}), file=sys.stderr)
        write_embeddings(work, [uid_of[r["uid_id"]] for r in rows], emb, meta={"text_encoder": "minilm"})
    failures = 0
    for seed in [int(s) for s in a.seeds.split(",")]:
        rng = np.random.default_rng(seed)
        goals = {}
        for t in TYPES:
            idx = [i for i, r in enumerate(rows) if r["group"] == t]
            goals[t] = set(rng.choice(idx, 30, replace=False).tolist())
        if "share" in a.parts:
            for t, gidx in goals.items():
                pool = [r for i, r in enumerate(rows) if i not in gidx]
                d = work / f"share_{t}_s{seed}"
                d.mkdir(exist_ok=True)
                write_pool(pool, d / "pool.jsonl")
                write_goal([rows[i] for i in sorted(gidx)], d / "goal.jsonl")
                t1 = time.perf_counter()
                res = run_select([d / "pool.jsonl"], None, d / "out", preset="target", budget=200,
                                 goal_set=[str(d / "goal.jsonl")], embeddings=store)
                secs = time.perf_counter() - t1
                by_uid = {uid_of[r["uid_id"]]: r["group"] for r in pool}
                picked = [by_uid[u] for u in res.gdo_uids()]
                base = [by_uid[u] for u in res.baseline_uids()]
                share = sum(p == t for p in picked) / max(1, len(picked))
                rate = sum(r["group"] == t for r in pool) / len(pool)
                ok = share >= 0.7
                failures += not ok
                gr = res.report["goal"]
                print(json.dumps({"part": "share", "seed": seed, "goal_type": t, "goal_items": 30, "pool": len(pool),
                                  "selected": len(picked), "share_in_subset": round(share, 3),
                                  "base_rate": round(rate, 3), "share_in_baseline": round(sum(b == t for b in base)
                                                                                         / max(1, len(base)), 3),
                                  "near_share": gr["near_share"], "ok": ok, "seconds": round(secs, 2)}))
        if "budgets" in a.parts:
            gidx = goals["temporal"]
            rest = [r for i, r in enumerate(rows) if i not in gidx]
            for size in (1000, len(rest)):
                pick = np.sort(np.random.default_rng(seed + 100).choice(len(rest), size, replace=False))
                pool = [rest[i] for i in pick.tolist()]
                for n in (100, 200, 300):
                    d = work / f"budget_{size}_{n}_s{seed}"
                    d.mkdir(exist_ok=True)
                    write_pool(pool, d / "pool.jsonl")
                    write_goal([rows[i] for i in sorted(gidx)], d / "goal.jsonl")
                    res = run_select([d / "pool.jsonl"], None, d / "out", preset="target", budget=n,
                                     goal_set=[str(d / "goal.jsonl")], embeddings=store)
                    got = len(res.gdo_idx)
                    ok = got == n and not res.report["unmet"]
                    failures += not ok
                    print(json.dumps({"part": "budgets", "seed": seed, "pool": size, "budget": n, "selected": got,
                                      "constraints": [{k: c[k] for k in ("name", "required", "achieved", "met")}
                                                      for c in res.report["constraints"]],
                                      "unmet": res.report["unmet"], "ok": ok}))
    print(json.dumps({"failures": failures, "work": str(work)}), file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
