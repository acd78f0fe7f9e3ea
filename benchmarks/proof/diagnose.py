#!/usr/bin/env python
"""Can a base learn the goal skill in one epoch? The diagnosis behind benchmarks/proof/README.md.

Pretrains a base (``base_model.build`` + ``pretrain``, ``--multi-share`` of "picture k" samples,
``world.MULTI_SHARE``), then trains it for one epoch (batch 8, lr 1e-3, ``train.train_run``) on
``--n`` samples drawn from the generator, not selected (``--goal-share`` goal clips, 13.7% of them
with a wrong answer, the rest static questions and captions), once per training order, and prints
one JSON line per order: goal and static-guard accuracy at every fifth of the epoch.

    PYTHONPATH=src python benchmarks/proof/diagnose.py --base-seed 1 --multi-share 0.2 --orders 1,2,3,4
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def mixture(n: int, goal_share: float, seed: int) -> list:
    import world

    r = np.random.default_rng(seed + 100)
    out = []
    for _ in range(n):
        if r.random() < goal_share:
            s = world.make_goal(r)
            if r.random() < 0.137:
                s = world.add_noise(r, s)
        elif r.random() < 0.7:
            s = world.make_static(r, video=bool(r.random() < 0.45), moving=bool(r.random() < 0.5))
        else:
            s = world.make_caption(r, video=bool(r.random() < 0.4))
        out.append(s)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-seed", type=int, default=1)
    ap.add_argument("--multi-share", type=float, default=None, help="default: world.MULTI_SHARE")
    ap.add_argument("--pretrain-steps", type=int, default=1_000)
    ap.add_argument("--orders", default="1,2,3,4", help="training-order seeds")
    ap.add_argument("--n", type=int, default=2_000)
    ap.add_argument("--goal-share", type=float, default=0.56)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    import base_model
    import pool
    import world
    from gdo.models.hf import VLMScorer
    from train import Evaluator, sample_item, train_run

    if a.multi_share is not None:
        world.MULTI_SHARE = a.multi_share
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        raw = base_model.build(Path(tmp) / "init", seed=a.base_seed)
        base = base_model.pretrain(raw, Path(tmp) / "base", steps=a.pretrain_steps, batch=16, lr=1e-3,
                                   seed=a.base_seed, log=lambda m: None)
        sc = VLMScorer(base, device="cpu", batch_size=16)
    state = {k: v.clone() for k, v in sc.model.state_dict().items()}
    ev = Evaluator(sc, {"goal": [sample_item(s) for s in pool.eval_set("goal", 200, seed=10_001)],
                        "static": [sample_item(s) for s in pool.eval_set("static", 200, seed=10_002)]})
    start = ev()
    for order in (int(x) for x in a.orders.split(",")):
        items = [sample_item(s) for s in mixture(a.n, a.goal_share, order)]
        cv = train_run(sc, state, items, batch=a.batch, lr=a.lr, seed=order, evaluate=ev)
        print(json.dumps({"base_seed": a.base_seed, "multi_share": world.MULTI_SHARE, "order": order,
                          "goal_share": a.goal_share, "base": start,
                          "goal": [round(p["goal"], 3) for p in cv], "static": [round(p["static"], 3) for p in cv],
                          "goal_best": round(max(p["goal"] for p in cv), 3),
                          "wall_s": round(time.perf_counter() - t0, 1)}), flush=True)


if __name__ == "__main__":
    main()
