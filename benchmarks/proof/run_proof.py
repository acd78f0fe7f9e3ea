#!/usr/bin/env python
"""The controlled comparison of GDO at CPU scale, through gdo's own code (issue 16).

Per seed, after ``prepare.py`` (pool, pretrained tiny base, ``gdo profile``):

1. ``gdo select`` (the CLI) with the Temp+-like ``goal_temporal.toml`` and ``--budget n``: the GDO
   1x subset and the Uni-10x baseline (``--baseline-mult 10``); a second call with
   ``--baseline-mult 1`` gives the same-size uniform control Uni-1x.
2. One epoch from the same base on each set (``train.train_run``), evaluated every fifth of the
   epoch on the held-out goal benchmark and on the static guard.
3. ``gdo compare`` (``gdo.compare.run_compare``) over the curves: GDO 1x against Uni-10x (peak
   match, reduction) and against Uni-1x.

Prints one JSON line per seed and a summary line; writes RESULTS/results.jsonl, curves CSVs,
compare.json/html per seed and RESULTS/summary.png (goal accuracy vs samples seen).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from prepare import cpu_s, gdo_cmd, gdo_env, prepare  # noqa: E402


def select(work: Path, out: Path, *, n: int, seed: int, mult: float) -> dict[str, list[str]]:
    prof = work / "profile"
    if not (out / "selection.jsonl").exists():
        cmd = gdo_cmd() + ["select", str(prof), "--descriptors", str(prof / "descriptors.parquet"),
                           "--goal", str(HERE / "goal_temporal.toml"), "--budget", str(n), "--seed", str(seed),
                           "--baseline-mult", str(mult), "--out", str(out)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=gdo_env())
    sets: dict[str, list[str]] = {"gdo": [], "baseline": []}
    for line in open(out / "selection.jsonl"):
        r = json.loads(line)
        sets[r["set"]].append(r["uid"])
    return sets


def composition(items, uids: list[str]) -> dict:
    f = [items.facts(u) for u in uids]
    goal = [x for x in f if x["kind"] == "goal"]
    return {"n": len(f), "video": sum(x["video"] for x in f), "goal": len(goal),
            "goal_clean": sum(x["clean"] for x in goal), "goal_noisy": sum(not x["clean"] for x in goal),
            "noisy": sum(not x["clean"] for x in f), "dups": sum(x["dup"] for x in f)}


def run_seed(work: Path, res_dir: Path, seed: int, *, n: int, batch: int, lr: float, scorer, base_state,
             evaluate, start: dict, pool_items, margin_pp: float) -> dict:
    from gdo.compare import run_compare
    from train import train_run

    w0, c0 = time.perf_counter(), cpu_s()
    sdir = work / f"seed{seed}"
    s10 = select(work, sdir / "sel10", n=n, seed=seed, mult=10)
    s1 = select(work, sdir / "sel1", n=n, seed=seed, mult=1)
    assert s10["gdo"] == s1["gdo"], "the GDO subset must not depend on the baseline multiplier"
    runs = {"gdo": s10["gdo"], "uni10x": s10["baseline"], "uni1x": s1["baseline"]}
    t_sel = time.perf_counter() - w0
    curves = {}
    for name, uids in runs.items():
        its = [pool_items.item(u) for u in uids]
        curves[name] = train_run(scorer, base_state, its, batch=batch, lr=lr, seed=seed, evaluate=evaluate)
    rows = [("start", 0, b, start[b]) for b in ("goal", "static")]
    for name, cv in curves.items():
        rows += [(name, p["samples_seen"], b, p[b]) for p in cv for b in ("goal", "static")]
    res_dir.mkdir(parents=True, exist_ok=True)
    csv_path = res_dir / f"curves_seed{seed}.csv"
    with open(csv_path, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["run", "samples_seen", "benchmark", "accuracy"])
        wr.writerows(rows)
    c10 = run_compare(res_dir / f"compare_seed{seed}_uni10x", csv=csv_path, baseline_run="uni10x",
                      margin=margin_pp, scale="fraction")
    c1 = run_compare(res_dir / f"compare_seed{seed}_uni1x", csv=csv_path, baseline_run="uni1x",
                     margin=margin_pp, scale="fraction", html=False)
    g10 = {r["benchmark"]: r for r in c10["benchmarks"]}
    g1 = {r["benchmark"]: r for r in c1["benchmarks"]}
    goal, guard = g10["goal"], g10["static"]
    out = {
        "seed": seed, "n": len(runs["gdo"]), "uni10x_n": len(runs["uni10x"]), "uni1x_n": len(runs["uni1x"]),
        "base_goal": start["goal"], "base_static": start["static"],
        "goal": {"gdo_best": goal["gdo"]["best"] / 100, "gdo_final": goal["gdo"]["final"] / 100,
                 "uni10x_best": goal["baseline"]["best"] / 100, "uni10x_final": goal["baseline"]["final"] / 100,
                 "uni1x_best": g1["goal"]["baseline"]["best"] / 100, "uni1x_final": g1["goal"]["baseline"]["final"] / 100,
                 "peak_match": goal["peak_match"], "peak_match_bound": goal["peak_match_bound"],
                 "reduction": goal["reduction"], "uni10x_learned": goal["valid"],
                 "gdo_minus_uni1x_final": g1["goal"]["delta_final"] / 100},
        "static_guard": {"gdo_final": guard["gdo"]["final"] / 100, "uni10x_final": guard["baseline"]["final"] / 100,
                         "uni1x_final": g1["static"]["baseline"]["final"] / 100},
        "selection": {k: composition(pool_items, v) for k, v in runs.items()},
        "curves": {k: [[p["samples_seen"], p["goal"], p["static"]] for p in v] for k, v in curves.items()},
        "wall_s": round(time.perf_counter() - w0, 1), "cpu_s": round(cpu_s() - c0, 1), "select_wall_s": round(t_sel, 1),
    }
    red = out["goal"]["reduction"]
    out["pass"] = bool(goal["valid"] and red is not None and red >= 5 and out["goal"]["gdo_minus_uni1x_final"] >= 0.2)
    return out


def figure(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.4), squeeze=False)
    for ax, r in zip(axes[0], results):
        for name, colour in (("gdo", "#d62728"), ("uni10x", "#1f77b4"), ("uni1x", "#7f7f7f")):
            pts = [[0, r["base_goal"], r["base_static"]]] + r["curves"][name]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, color=colour,
                    label={"gdo": "GDO 1x", "uni10x": "Uni-10x", "uni1x": "Uni-1x"}[name])
            ax.plot([p[0] for p in pts], [p[2] for p in pts], ls=":", color=colour, lw=1)
        g = r["goal"]
        if g["peak_match"]:
            ax.axvline(g["peak_match"], color="#d62728", ls="--", lw=0.8)
        ax.set_xscale("symlog", linthresh=max(1, r["n"] // 5))
        ax.set_xlim(left=0)
        if not g["uni10x_learned"]:
            head = "Uni-10x never learned (no valid match)"
        else:
            head = f"reduction {g['reduction']:.1f}x" if g["reduction"] else "no peak match"
        ax.set_title(f"seed {r['seed']}: {head}", fontsize=10)
        ax.set_xlabel("training samples seen")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("accuracy (solid: goal, dotted: static guard)")
    axes[0][0].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("proof_work"))
    ap.add_argument("--results", type=Path, default=None, help="default WORK/results")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--pool", type=int, default=40_000)
    ap.add_argument("--n", type=int, default=2_000, help="GDO 1x size (Uni-10x: 10 n)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--eval", type=int, default=200, help="questions per evaluation benchmark")
    ap.add_argument("--margin-pp", type=float, default=10.0, help="gain over the base a baseline needs to count as learned")
    ap.add_argument("--pretrain-steps", type=int, default=1_000)
    ap.add_argument("--base-seed", type=int, default=1, help="seed of the base model's initialisation and pretraining")
    ap.add_argument("--summarize", action="store_true",
                    help="only rebuild summary.json/summary.png from RESULTS/results.jsonl (seeds run in parallel)")
    a = ap.parse_args()
    res_dir = a.results or a.work / "results"
    if a.summarize:
        results = [json.loads(x) for x in open(res_dir / "results.jsonl")]
        results.sort(key=lambda r: r["seed"])
        summarize(results, res_dir, a, None, None, None)
        return
    import torch

    torch.set_num_threads(1)
    from gdo.models.hf import VLMScorer

    import pool
    from train import Evaluator, PoolItems, sample_item

    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    w0, c0 = time.perf_counter(), cpu_s()
    prep = prepare(a.work, pool_n=a.pool, pool_seed=0, pretrain_steps=a.pretrain_steps, pretrain_batch=16,
                   pretrain_lr=1e-3, base_seed=a.base_seed, log=log)
    print(json.dumps({"stage": "prepare", **prep}), flush=True)
    scorer = VLMScorer(a.work / "base", device="cpu", batch_size=16)
    base_state = {k: v.clone() for k, v in scorer.model.state_dict().items()}
    sets = {"goal": [sample_item(s) for s in pool.eval_set("goal", a.eval, seed=10_001)],
            "static": [sample_item(s) for s in pool.eval_set("static", a.eval, seed=10_002)]}
    evaluate = Evaluator(scorer, sets)
    start = evaluate()
    pool_items = PoolItems(a.work / "pool")
    results = []
    for seed in [int(s) for s in a.seeds.split(",")]:
        r = run_seed(a.work, res_dir, seed, n=a.n, batch=a.batch, lr=a.lr, scorer=scorer, base_state=base_state,
                     evaluate=evaluate, start=start, pool_items=pool_items, margin_pp=a.margin_pp)
        results.append(r)
        print(json.dumps(r), flush=True)
        with open(res_dir / "results.jsonl", "a") as f:
            f.write(json.dumps(r) + "\n")
    summarize(results, res_dir, a, start, w0, c0)


def summarize(results: list[dict], res_dir: Path, a, start, w0, c0) -> None:
    figure(results, res_dir / "summary.png")
    summ = {
        "stage": "summary", "seeds": len(results), "passed": sum(r["pass"] for r in results),
        "bar": "GDO 1x reaches Uni-10x's best (reduction >= 5x, Uni-10x learned) and beats Uni-1x by >= 0.2 (final goal accuracy)",
        "reductions": [r["goal"]["reduction"] for r in results],
        "gdo_goal_best": [r["goal"]["gdo_best"] for r in results],
        "uni10x_goal_best": [r["goal"]["uni10x_best"] for r in results],
        "uni1x_goal_final": [r["goal"]["uni1x_final"] for r in results],
        "baseline_never_learned": [r["seed"] for r in results if not r["goal"]["uni10x_learned"]],
        "static_guard_final": {k: [r["static_guard"][k] for r in results] for k in ("gdo_final", "uni10x_final", "uni1x_final")},
        "base": start or {"goal": results[0]["base_goal"], "static": results[0]["base_static"]}, "pool": a.pool, "n": a.n, "batch": a.batch, "lr": a.lr,
        "wall_s": round(time.perf_counter() - w0, 1) if w0 else None, "cpu_s": round(cpu_s() - c0, 1) if c0 else None,
        "seed_wall_s": [r["wall_s"] for r in results], "seed_cpu_s": [r["cpu_s"] for r in results],
        "load_avg": os.getloadavg(), "cores": os.cpu_count(),
    }
    old = res_dir / "summary.json"
    if w0 is None and old.exists():  # --summarize: keep the timed run's wall/CPU/load figures
        prev = json.loads(old.read_text())
        summ.update({k: prev[k] for k in ("wall_s", "cpu_s", "load_avg") if prev.get(k) is not None})
    print(json.dumps(summ), flush=True)
    (res_dir / "summary.json").write_text(json.dumps(summ, indent=2) + "\n")


if __name__ == "__main__":
    main()
